using System.Net;
using System.Net.Http.Headers;
using DaprTrain.Engine.Messaging;
using DaprTrain.GradientFunction;
using DaprTrain.Training;
using DaprTrain.Training.Data;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace DaprTrain.Services.Tests;

/// <summary>
/// Issue 10: the gradient-function app over HTTP, as daprd calls it for POST /v1.0/invoke/gradient-function/method/gradient.
/// A sound invocation is answered with exactly the gradient the engine's GradientFunction computes; anything else is
/// refused with 400 or 413 and the reason, and never computed.
/// </summary>
public sealed class GradientFunctionAppTests : IDisposable
{
    private const string Job = "fn-test";
    private const int BatchSize = 16;
    private readonly WebApplicationFactory<FunctionRuntime> _app = new WebApplicationFactory<FunctionRuntime>().WithWebHostBuilder(b => b
        .UseSetting("Job:JobId", Job).UseSetting("Job:Dataset", "synthetic").UseSetting("Job:BatchSize", BatchSize.ToString(System.Globalization.CultureInfo.InvariantCulture))
        .UseSetting("Job:Holdout", "500"));
    private readonly TrainerOptions _trainer = new("mlp", new DaprTrain.Training.Parameters.OptimizerSettings(DaprTrain.Training.Parameters.OptimizerKind.Adam, 2e-3, 0), BatchSize, 1);

    public void Dispose() => _app.Dispose();

    private float[] Weights()
    {
        using var trainer = new Trainer(_trainer);
        return trainer.Parameters.WeightSpan.ToArray();
    }

    private static long[] Samples => [3, 1, 4, 1, 5, 9, 2, 6];

    private async Task<HttpResponseMessage> Invoke(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return await _app.CreateClient().PostAsync(FunctionHosting.GradientRoute, content);
    }

    [Fact]
    public async Task An_invocation_is_answered_with_the_engines_gradient_bit_for_bit_and_a_retry_from_the_cache()
    {
        float[] weights = Weights();
        var invocation = new FunctionInvocation(Job, "worker-1", 0, 7, 1, Samples, weights);
        using var response = await Invoke(FunctionInvocationCodec.Encode(invocation));
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var answer = WireCodec.Decode(await response.Content.ReadAsByteArrayAsync());
        invocation.Mismatch(answer).Should().BeNull();

        using var data = TrainingData.Synthetic(10_000, 1, 500);
        using var function = new DaprTrain.Engine.Nodes.GradientFunction(_trainer);
        answer.Values.ToArray().Should().Equal(function.Invoke(weights, data.Train, Samples), "any instance gives the same gradient for the same weights and samples");

        using var again = await Invoke(FunctionInvocationCodec.Encode(invocation));
        (await again.Content.ReadAsByteArrayAsync()).Should().Equal(WireCodec.Encode(answer));
        using var status = await _app.CreateClient().GetAsync("/status");
        (await status.Content.ReadAsStringAsync()).Should().Contain("\"served\":1").And.Contain("\"fromCache\":1");
    }

    /// <summary>
    /// A round recomputed after a state transfer asks again under the same idempotency key with other samples (or
    /// weights): it gets the gradient of what it asked, not the cached answer to the earlier request.
    /// </summary>
    [Fact]
    public async Task The_same_key_with_other_samples_is_computed_again_not_answered_from_the_cache()
    {
        float[] weights = Weights();
        var first = new FunctionInvocation(Job, "worker-1", 0, 7, 1, Samples, weights);
        var again = first with { Samples = [2, 7, 1, 8, 2, 8] };
        first.IdempotencyKey.Should().Be(again.IdempotencyKey);
        using var one = await Invoke(FunctionInvocationCodec.Encode(first));
        using var two = await Invoke(FunctionInvocationCodec.Encode(again));
        var answer = WireCodec.Decode(await two.Content.ReadAsByteArrayAsync());
        again.Mismatch(answer).Should().BeNull("the answer counts the new share's samples");

        using var data = TrainingData.Synthetic(10_000, 1, 500);
        using var function = new DaprTrain.Engine.Nodes.GradientFunction(_trainer);
        answer.Values.ToArray().Should().Equal(function.Invoke(weights, data.Train, again.Samples));
        using var status = await _app.CreateClient().GetAsync("/status");
        (await status.Content.ReadAsStringAsync()).Should().Contain("\"served\":2").And.Contain("\"fromCache\":0");
    }

    public static TheoryData<string, string> Refusals() => new()
    {
        { "garbage", "bad magic number" },
        { "flipped-bit", "checksum mismatch" },
        { "other-job", "this function serves job 'fn-test'" },
        { "index-out-of-range", "outside the training set" },
        { "more-samples-than-a-batch", "a share holds 1 to 16" },
        { "nan-weight", "non-finite weight" },
        { "wrong-weight-count", "the model has" },
        { "truncated", "truncated" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_malformed_invocation_is_refused_with_its_reason(string kind, string reason)
    {
        float[] weights = Weights();
        FunctionInvocation Of(long[]? samples = null, float[]? values = null, string job = Job) => new(job, "worker-1", 0, 7, 0, samples ?? Samples, values ?? weights);
        byte[] body = kind switch
        {
            "garbage" => "this is not an invocation, though it is long enough to be one"u8.ToArray(),
            "flipped-bit" => Flip(FunctionInvocationCodec.Encode(Of())),
            "other-job" => FunctionInvocationCodec.Encode(Of(job: "someone-else")),
            "index-out-of-range" => FunctionInvocationCodec.Encode(Of(samples: [1, 2, 1_000_000])),
            "more-samples-than-a-batch" => FunctionInvocationCodec.Encode(Of(samples: Enumerable.Range(0, BatchSize + 1).Select(i => (long)i).ToArray())),
            "nan-weight" => FunctionInvocationCodec.Encode(Of(values: [.. weights[..^1], float.NaN])),
            "wrong-weight-count" => FunctionInvocationCodec.Encode(Of(values: weights[..100])),
            _ => FunctionInvocationCodec.Encode(Of())[..30],
        };
        using var response = await Invoke(body);
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.Content.ReadAsStringAsync()).Should().Contain(reason);
    }

    [Fact]
    public async Task An_invocation_larger_than_the_model_and_a_batch_can_need_is_refused_unread_with_413()
    {
        using var response = await Invoke(new byte[2 << 20]);
        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        (await response.Content.ReadAsStringAsync()).Should().Contain("an invocation of the mlp model with at most 16 samples is at most");
    }

    private static byte[] Flip(byte[] bytes)
    {
        bytes[40] ^= 1;
        return bytes;
    }
}
