using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Dapr.Client;
using DaprTrain.SidecarDouble;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DaprTrain.EndToEnd.Tests;

/// <summary>
/// The double's own contract where the services' scenarios do not reach it: health before and after the app
/// channel, actor timers, the metadata API. The "app" is a small host that records what the sidecar calls.
/// </summary>
public sealed class SidecarDoubleTests : IAsyncLifetime
{
    private const string ActorType = "TestActor";
    private readonly SharedComponents _components = new();
    private readonly ConcurrentQueue<(string Path, string Body)> _actorCalls = new();
    private readonly HttpClient _http = new();
    private WebApplication? _app;
    private Sidecar? _sidecar;

    public async Task InitializeAsync()
    {
        int port = Sidecar.FreePort();
        var url = new Uri($"http://127.0.0.1:{port}/");
        _sidecar = await Sidecar.StartAsync("test-app", url, _components);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(url.ToString());
        _app = builder.Build();
        _app.MapGet("/health", () => Results.Ok());
        _app.MapGet("/dapr/subscribe", () => Results.Json(new[] { new { pubsubname = "gradients", topic = "gradients", route = "/messages/gradients" } }));
        _app.MapGet("/dapr/config", () => Results.Json(new { entities = new[] { ActorType } }));
        _app.MapMethods("/actors/{type}/{id}/method/{**rest}", ["PUT"], async (HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            _actorCalls.Enqueue((request.Path.Value!, await reader.ReadToEndAsync()));
            return Results.Ok();
        });
    }

    private Uri SidecarUri(string path) => new($"http://127.0.0.1:{_sidecar!.HttpPort}/{path}");

    private async Task StartAppAsync()
    {
        await _app!.StartAsync();
        await _sidecar!.AttachAppAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Healthz_answers_500_until_the_app_channel_is_up_while_the_outbound_check_answers_at_once()
    {
        using (var before = await _http.GetAsync(SidecarUri("v1.0/healthz")))
        {
            before.StatusCode.Should().Be(HttpStatusCode.InternalServerError);
            (await before.Content.ReadAsStringAsync()).Should().Contain("ERR_HEALTH_NOT_READY");
        }
        using (var outbound = await _http.GetAsync(SidecarUri("v1.0/healthz/outbound"))) outbound.StatusCode.Should().Be(HttpStatusCode.NoContent);

        await StartAppAsync();

        using var after = await _http.GetAsync(SidecarUri("v1.0/healthz"));
        after.StatusCode.Should().Be(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task A_timer_calls_its_callback_until_deleted_and_dies_with_its_host_while_a_reminder_survives_the_restart()
    {
        await StartAppAsync();
        const string schedule = """{"callback":"TickAsync","data":"aGk=","dueTime":"0h0m0s50ms","period":"0h0m0s100ms"}""";
        (await _http.PutAsync(SidecarUri($"v1.0/actors/{ActorType}/a/timers/tick"), Json(schedule))).StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await _http.PutAsync(SidecarUri($"v1.0/actors/{ActorType}/a/timers/doomed"), Json(schedule))).StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await _http.DeleteAsync(SidecarUri($"v1.0/actors/{ActorType}/a/timers/doomed"))).StatusCode.Should().Be(HttpStatusCode.NoContent);
        // On a loaded machine its 50 ms due time can pass before the DELETE lands: what fired by then may, nothing after.
        int doomedWhenDeleted = Calls("timer/doomed");
        (await _http.PutAsync(SidecarUri($"v1.0/actors/{ActorType}/a/reminders/lease"), Json("""{"dueTime":"0h0m0s50ms","period":"0h0m0s100ms"}"""))).StatusCode.Should().Be(HttpStatusCode.NoContent);

        await WaitUntil(() => Calls("timer/tick") >= 3 && Calls("remind/lease") >= 2);
        _actorCalls.Where(c => c.Path.EndsWith("timer/tick", StringComparison.Ordinal)).Should().OnlyContain(c => c.Body.Contains("\"callback\":\"TickAsync\"") && c.Body.Contains("aGk="));

        // The actor host restarts: the sidecar reads its config again. Its timers are gone, its reminders are not.
        await _sidecar!.AttachAppAsync(TimeSpan.FromSeconds(10));
        _components.Reminders.TimerCount.Should().Be(0);
        int ticks = Calls("timer/tick");
        int reminders = Calls("remind/lease");
        await Task.Delay(500);
        Calls("timer/tick").Should().BeLessThanOrEqualTo(ticks + 1, "at most a firing already under way lands after the restart");
        Calls("remind/lease").Should().BeGreaterThan(reminders);
        Calls("timer/doomed").Should().BeLessThanOrEqualTo(doomedWhenDeleted + 1, "a deleted timer stops firing (at most a firing already under way lands)");
    }

    [Fact]
    public async Task GetMetadata_through_the_real_DaprClient_names_the_app_its_components_and_its_actor_types()
    {
        await StartAppAsync();
        using var dapr = new DaprClientBuilder()
            .UseGrpcEndpoint($"http://127.0.0.1:{_sidecar!.GrpcPort}")
            .UseHttpEndpoint($"http://127.0.0.1:{_sidecar.HttpPort}")
            .Build();

        var metadata = await dapr.GetMetadataAsync();

        metadata.Id.Should().Be("test-app");
        metadata.Components.Select(c => c.Name).Should().BeEquivalentTo(["gradients", "checkpoints"]);
        metadata.Components.Single(c => c.Name == "checkpoints").Capabilities.Should().Contain(["ETAG", "TRANSACTIONAL", "ACTOR"]);
        metadata.Actors.Select(a => a.Type).Should().Equal(ActorType);
    }

    private int Calls(string suffix) => _actorCalls.Count(c => c.Path.EndsWith(suffix, StringComparison.Ordinal));

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task WaitUntil(Func<bool> condition)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException("the sidecar did not call the app in time");
            await Task.Delay(20);
        }
    }

    public async Task DisposeAsync()
    {
        if (_sidecar is not null) await _sidecar.DisposeAsync();
        if (_app is not null) await _app.DisposeAsync();
        await _components.DisposeAsync();
        _http.Dispose();
    }
}
