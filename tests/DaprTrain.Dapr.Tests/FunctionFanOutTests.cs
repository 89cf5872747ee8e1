using System.Net;
using DaprTrain.Engine.Messaging;
using DaprTrain.SidecarDouble;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace DaprTrain.Dapr.Tests;

/// <summary>
/// Issue 10: a worker's fan-out through a sidecar double's service invocation to a stand-in function app whose
/// answers the test chooses: a gradient is taken only when it answers the invocation; failures are retried; a refusal
/// (4xx) is not; whatever the app cannot compute the worker computes itself.
/// </summary>
public sealed class FunctionFanOutTests : IAsyncLifetime
{
    private const string FunctionApp = "gradient-function";
    private readonly SharedComponents _components = new();
    private Sidecar? _sidecar;
    private WebApplication? _function;
    private Func<FunctionInvocation, IResult> _answer = _ => Results.StatusCode(500);

    public async Task InitializeAsync() =>
        _sidecar = await Sidecar.StartAsync("worker-1", new Uri("http://127.0.0.1:9/"), _components);

    public async Task DisposeAsync()
    {
        if (_function is not null) await _function.DisposeAsync();
        if (_sidecar is not null) await _sidecar.DisposeAsync();
        await _components.DisposeAsync();
    }

    /// <summary>A function app instance under the app id, answering with <see cref="_answer"/>.</summary>
    private async Task StartFunctionAsync()
    {
        int port = Sidecar.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        _function = builder.Build();
        _function.MapPost("/gradient", async (HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            return _answer(FunctionInvocationCodec.Decode(body.ToArray(), 64, 1000, 4));
        });
        await _function.StartAsync();
        _components.Invocation.Register(FunctionApp, new Uri($"http://127.0.0.1:{port}/"));
    }

    private FunctionFanOut FanOut(int attempts = 3) => new(Options.Create(new FunctionOptions { Enabled = true, Shares = 2, Attempts = attempts, RetryBackoffMs = 0, TimeoutMs = 10_000 }),
        NullLogger<FunctionFanOut>.Instance, TimeProvider.System, $"http://127.0.0.1:{_sidecar!.HttpPort}");

    private static FunctionInvocation[] Invocations(long round = 3) =>
        [new("job", "worker-1", 0, round, 0, [1, 2, 3], new float[] { 1, 2, 3, 4 }), new("job", "worker-1", 0, round, 1, [4, 5], new float[] { 1, 2, 3, 4 })];

    /// <summary>What the worker computes itself: recognisable values (-1 - share).</summary>
    private static float[] Local(FunctionInvocation invocation) => Enumerable.Repeat(-1f - invocation.Share, 4).ToArray();

    private static IResult Gradient(FunctionInvocation invocation, long? round = null) => Results.Bytes(WireCodec.Encode(new WireMessage(MessageKind.Gradient, invocation.JobId,
        invocation.Generation, round ?? invocation.Round, invocation.Worker, invocation.Samples.Length, invocation.Share, 0,
        invocation.Weights.ToArray().Select(w => w * 10 + invocation.Share).ToArray())), "application/octet-stream");

    [Fact]
    public async Task Answered_invocations_give_the_functions_gradients_in_share_order()
    {
        await StartFunctionAsync();
        _answer = invocation => Gradient(invocation);
        using var fanOut = FanOut();
        var gradients = await fanOut.ComputeAsync(Invocations(), Local, CancellationToken.None);
        gradients.Select(g => g.Samples).Should().Equal(3, 2);
        gradients[0].Gradient.ToArray().Should().Equal(10f, 20f, 30f, 40f);
        gradients[1].Gradient.ToArray().Should().Equal(11f, 21f, 31f, 41f);
        fanOut.Counters.Should().BeEquivalentTo(new { Attempts = 2L, Served = 2L, Retries = 0L, Refused = 0L, Fallbacks = 0L, Pending = 0L });
    }

    [Fact]
    public async Task Without_an_instance_every_attempt_fails_and_the_worker_computes_the_shares_itself()
    {
        using var fanOut = FanOut(attempts: 3);
        var gradients = await fanOut.ComputeAsync(Invocations(), Local, CancellationToken.None);
        gradients.Select(g => g.Gradient.ToArray()).Should().BeEquivalentTo([new[] { -1f, -1f, -1f, -1f }, new[] { -2f, -2f, -2f, -2f }], o => o.WithStrictOrdering());
        fanOut.Counters.Should().BeEquivalentTo(new { Attempts = 6L, Served = 0L, Retries = 4L, Fallbacks = 2L });
        _components.Invocation.Calls(FunctionApp).Should().BeEmpty("no instance was there to call: the sidecar answered ERR_DIRECT_INVOKE itself");
    }

    [Fact]
    public async Task A_refused_invocation_is_not_retried()
    {
        await StartFunctionAsync();
        _answer = _ => Results.Json(new { error = "sample index 9 at 0 is outside the training set" }, statusCode: 400);
        using var fanOut = FanOut(attempts: 3);
        var gradients = await fanOut.ComputeAsync(Invocations(), Local, CancellationToken.None);
        gradients[1].Gradient.ToArray().Should().Equal(-2f, -2f, -2f, -2f);
        fanOut.Counters.Should().BeEquivalentTo(new { Attempts = 2L, Refused = 2L, Retries = 0L, Fallbacks = 2L });
    }

    [Fact]
    public async Task An_answer_for_another_round_is_not_taken()
    {
        await StartFunctionAsync();
        _answer = invocation => Gradient(invocation, round: invocation.Round + 1);
        using var fanOut = FanOut(attempts: 2);
        var gradients = await fanOut.ComputeAsync(Invocations(), Local, CancellationToken.None);
        gradients[0].Gradient.ToArray().Should().Equal(-1f, -1f, -1f, -1f);
        fanOut.Counters.Should().BeEquivalentTo(new { Attempts = 4L, Served = 0L, Retries = 2L, Fallbacks = 2L });
        _components.Invocation.Calls(FunctionApp).Values.Sum().Should().Be(4, "each attempt reached the instance; its answers were refused by the worker");
    }
}
