using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using DaprTrain.Dapr.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DaprTrain.SidecarDouble;

/// <summary>
/// One sidecar double for one app, like daprd: gRPC on <see cref="GrpcPort"/> (DAPR_GRPC_PORT) and HTTP on
/// <see cref="HttpPort"/> (DAPR_HTTP_PORT), talking to its app at <see cref="AppUrl"/>. Sidecars of one test share
/// their <see cref="SharedComponents"/>. See README.md beside this file for what it models and what it does not.
/// </summary>
public sealed class Sidecar : IAsyncDisposable
{
    private static readonly string[] HopHeaders = ["Host", "Content-Length", "Transfer-Encoding", "Connection"];
    private readonly WebApplication _server;
    private volatile bool _appChannelReady;

    private Sidecar(string appId, Uri appUrl, SharedComponents components, int httpPort, int grpcPort)
    {
        AppId = appId;
        AppUrl = appUrl;
        Components = components;
        HttpPort = httpPort;
        GrpcPort = grpcPort;

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = DaprRuntimeService.MaxBodyBytes + 64 * 1024;
            k.Listen(IPAddress.Loopback, httpPort, o => o.Protocols = HttpProtocols.Http1);
            k.Listen(IPAddress.Loopback, grpcPort, o => o.Protocols = HttpProtocols.Http2);
        });
        builder.Services.AddSocketReadBlocks(builder.Configuration);
        builder.Services.AddDaprRuntimeService(new DaprRuntimeService(appId, components, appUrl));
        _server = builder.Build();
        // The SDK joins its endpoint and the API path with one slash too many ("//v1.0/..."); daprd accepts that.
        _server.Use(async (context, next) =>
        {
            if (Down)
            {
                // A sidecar that is down answers nothing useful: HTTP 503, gRPC Unavailable.
                if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true)
                {
                    context.Response.ContentType = "application/grpc";
                    context.Response.Headers["grpc-status"] = "14";
                    context.Response.Headers["grpc-message"] = "sidecar down";
                    return;
                }
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return;
            }
            string path = context.Request.Path.Value ?? "";
            if (path.StartsWith("//", StringComparison.Ordinal)) context.Request.Path = new PathString("/" + path.TrimStart('/'));
            await next(context);
        });
        _server.UseRouting();
        _server.MapGrpcService<DaprRuntimeService>();
        MapHttpApi(_server);
    }

    public string AppId { get; }

    public Uri AppUrl { get; }

    public SharedComponents Components { get; }

    public int HttpPort { get; }

    public int GrpcPort { get; }

    /// <summary>While true the sidecar refuses its app's calls and the broker holds the app's deliveries (fault knob).</summary>
    public bool Down
    {
        get => Components.DownApps.ContainsKey(AppId);
        set
        {
            if (value) Components.DownApps[AppId] = true;
            else Components.DownApps.TryRemove(AppId, out _);
        }
    }

    /// <summary>Takes the sidecar down for <paramref name="duration"/>, then back up.</summary>
    public async Task GoDownAsync(TimeSpan duration)
    {
        Down = true;
        await Task.Delay(duration);
        Down = false;
    }

    public static async Task<Sidecar> StartAsync(string appId, Uri appUrl, SharedComponents components)
    {
        var sidecar = new Sidecar(appId, appUrl, components, FreePort(), FreePort());
        await sidecar._server.StartAsync();
        return sidecar;
    }

    /// <summary>The environment an app needs to find this sidecar.</summary>
    public IReadOnlyDictionary<string, string> AppEnvironment => new Dictionary<string, string>
    {
        ["DAPR_HTTP_PORT"] = HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["DAPR_GRPC_PORT"] = GrpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// What daprd does once its app is up (and again after the app restarts): read GET /dapr/subscribe and
    /// GET /dapr/config, register the subscriptions and the actor types.
    /// </summary>
    public async Task AttachAppAsync(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                using var health = await Components.Http.GetAsync(new Uri(AppUrl, "health"));
                if (health.IsSuccessStatusCode) break;
            }
            catch (HttpRequestException)
            {
            }
            if (DateTime.UtcNow > until) throw new TimeoutException($"{AppId} did not answer at {AppUrl} within {timeout}");
            await Task.Delay(100);
        }

        // An app without subscriptions may answer 404 here; daprd reads that as none.
        using var subscribe = await Components.Http.GetAsync(new Uri(AppUrl, "dapr/subscribe"));
        if (subscribe.IsSuccessStatusCode)
        {
            using var subscriptions = JsonDocument.Parse(await subscribe.Content.ReadAsStringAsync());
            foreach (var entry in subscriptions.RootElement.EnumerateArray())
            {
                var fields = entry.EnumerateObject().ToDictionary(p => p.Name.ToLowerInvariant(), p => p.Value);
                string route = fields.TryGetValue("route", out var single) && single.ValueKind == JsonValueKind.String
                    ? single.GetString()!
                    : fields["routes"].EnumerateObject().First(p => p.Name.Equals("default", StringComparison.OrdinalIgnoreCase)).Value.GetString()!;
                string? deadLetterTopic = fields.TryGetValue("deadlettertopic", out var deadLetter) && deadLetter.ValueKind == JsonValueKind.String ? deadLetter.GetString() : null;
                Components.Broker.Subscribe(AppId, AppUrl, fields["pubsubname"].GetString()!, fields["topic"].GetString()!, route, deadLetterTopic);
            }
        }
        using var config = await Components.Http.GetAsync(new Uri(AppUrl, "dapr/config"));
        if (config.IsSuccessStatusCode)
        {
            using var json = JsonDocument.Parse(await config.Content.ReadAsStringAsync());
            if (json.RootElement.TryGetProperty("entities", out var entities))
            {
                var types = entities.EnumerateArray().Select(type => type.GetString()!).ToList();
                // A (re)started host has no actors yet: timers of its actor types died with the previous one.
                Components.Reminders.DropTimers(types);
                foreach (var type in types) Components.Placement[type] = AppUrl;
            }
        }
        _appChannelReady = true;
        // Name resolution finds the app from now on (mDNS announces an app once its sidecar runs; in Kubernetes, once the pod is ready).
        Components.Invocation.Register(AppId, AppUrl);
    }

    private void MapHttpApi(WebApplication app)
    {
        // daprd answers healthz 500 until its app channel is up (app reachable, subscriptions and actor types read);
        // healthz/outbound only waits for the components.
        app.MapGet("/v1.0/healthz", () => _appChannelReady
            ? Results.NoContent()
            : Results.Json(new { errorCode = "ERR_HEALTH_NOT_READY", message = "dapr is not ready" }, statusCode: StatusCodes.Status500InternalServerError));
        app.MapGet("/v1.0/healthz/outbound", () => Results.NoContent());

        app.MapMethods("/v1.0/actors/{type}/{id}/method/{method}", ["PUT", "POST"], InvokeActorAsync);

        app.MapDaprPublishApi();

        app.MapGet("/v1.0/actors/{type}/{id}/state/{key}", (string type, string id, string key) =>
            Components.State.Get(ActorKey(type, id, key)) is { } item ? Results.Bytes(item.Value, "application/json") : Results.NoContent());

        app.MapMethods("/v1.0/actors/{type}/{id}/state", ["PUT", "POST"], async (string type, string id, HttpRequest request) =>
        {
            using var json = await JsonDocument.ParseAsync(request.Body);
            var operations = new List<(string, byte[]?, string?)>();
            foreach (var operation in json.RootElement.EnumerateArray())
            {
                var body = operation.GetProperty("request");
                string key = ActorKey(type, id, body.GetProperty("key").GetString()!);
                operations.Add(operation.GetProperty("operation").GetString() switch
                {
                    "upsert" => (key, Encoding.UTF8.GetBytes(body.GetProperty("value").GetRawText()), null),
                    "delete" => (key, null, null),
                    var other => throw new Microsoft.AspNetCore.Http.BadHttpRequestException($"unsupported actor state operation {other}"),
                });
            }
            Components.State.Apply(operations);
            return Results.NoContent();
        });

        app.MapMethods("/v1.0/actors/{type}/{id}/reminders/{name}", ["PUT", "POST"], async (string type, string id, string name, HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            Components.Reminders.Register(Components, type, id, name, await reader.ReadToEndAsync());
            return Results.NoContent();
        });
        app.MapDelete("/v1.0/actors/{type}/{id}/reminders/{name}", (string type, string id, string name) =>
        {
            Components.Reminders.Unregister(type, id, name);
            return Results.NoContent();
        });
        app.Map("/v1.0/invoke/{appId}/method/{**method}", InvokeServiceAsync);
        app.MapFallback((HttpContext context) =>
        {
            Components.ActorCalls.Enqueue($"unmatched {context.Request.Method} {context.Request.Path}");
            return Results.NotFound(new { errorCode = "ERR_NOT_IMPLEMENTED_IN_DOUBLE", message = $"{context.Request.Method} {context.Request.Path} is not part of the double" });
        });
        app.MapMethods("/v1.0/actors/{type}/{id}/timers/{name}", ["PUT", "POST"], async (string type, string id, string name, HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            Components.Reminders.Register(Components, type, id, name, await reader.ReadToEndAsync(), ScheduleKind.Timer);
            return Results.NoContent();
        });
        app.MapDelete("/v1.0/actors/{type}/{id}/timers/{name}", (string type, string id, string name) =>
        {
            Components.Reminders.Unregister(type, id, name, ScheduleKind.Timer);
            return Results.NoContent();
        });
    }

    /// <summary>Forwards an actor call to the app hosting the type, one call at a time per actor (turn-based, whoever calls).</summary>
    private async Task InvokeActorAsync(HttpContext context, string type, string id, string method)
    {
        if (!Components.Placement.TryGetValue(type, out var host))
        {
            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            await context.Response.WriteAsync($"{{\"errorCode\":\"ERR_ACTOR_INSTANCE_MISSING\",\"message\":\"no app hosts actor type {type}\"}}");
            return;
        }
        // The actor's one lock, shared with every other sidecar's callers and with its reminders and timers.
        long waiting = System.Diagnostics.Stopwatch.GetTimestamp();
        using var turn = await Components.ActorTurns.TakeAsync(type, id, context.RequestAborted);
        Components.Timings.Since("actor turn wait", waiting);
        long calling = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            using var forward = new HttpRequestMessage(HttpMethod.Put, new Uri(host, $"actors/{type}/{id}/method/{method}"));
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            forward.Content = new ByteArrayContent(body.ToArray());
            foreach (var header in context.Request.Headers.Where(h => !HopHeaders.Contains(h.Key, StringComparer.OrdinalIgnoreCase)))
            {
                if (!forward.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray())) forward.Content.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray());
            }
            using var response = await Components.Http.SendAsync(forward, context.RequestAborted);
            Components.ActorCalls.Enqueue($"{context.Request.Method} {forward.RequestUri} -> {(int)response.StatusCode}");
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var header in response.Headers.Concat(response.Content.Headers).Where(h => !HopHeaders.Contains(h.Key, StringComparer.OrdinalIgnoreCase)))
            {
                context.Response.Headers[header.Key] = header.Value.ToArray();
            }
            await response.Content.CopyToAsync(context.Response.Body, context.RequestAborted);
            Components.Timings.Since("actor call", calling);
        }
        catch (HttpRequestException ex)
        {
            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            await context.Response.WriteAsync($"{{\"errorCode\":\"ERR_ACTOR_INVOKE_METHOD\",\"message\":\"{JsonEncodedText.Encode(ex.Message)}\"}}");
        }
    }

    /// <summary>
    /// Service invocation, as daprd's HTTP API does it (dapr/dapr pkg/api/http/directmessaging.go): the request goes to
    /// one instance of the app id (round robin over the instances whose sidecars found their apps, as name resolution
    /// spreads calls), with its method, body, content type and headers; the app's status and body come back as they are,
    /// a non-2xx included. No instance, or one that does not answer (its process died): 500 ERR_DIRECT_INVOKE. A body over
    /// the sidecar's limit (--max-body-size, 4 MiB): 413. No timeout and no retry of its own: those come from a Resiliency
    /// policy, which the double does not model for invocation; callers time out and retry themselves.
    /// </summary>
    private async Task InvokeServiceAsync(HttpContext context, string appId, string method)
    {
        if (context.Request.ContentLength > DaprRuntimeService.MaxBodyBytes)
        {
            // Read and forget the body first (up to 64 MiB), so that the caller reads the answer rather than a reset connection.
            if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = 64L << 20;
            try
            {
                await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException)
            {
            }
            context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            await context.Response.WriteAsync($"{{\"errorCode\":\"ERR_BODY_TOO_LARGE\",\"message\":\"request body of {context.Request.ContentLength} bytes exceeds the {DaprRuntimeService.MaxBodyBytes}-byte limit\"}}");
            return;
        }
        var target = Components.Invocation.Next(appId);
        if (target is null)
        {
            await DirectInvokeErrorAsync(context, appId, $"couldn't find service: {appId}");
            return;
        }
        try
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            using var forward = new HttpRequestMessage(new HttpMethod(context.Request.Method), new Uri(target, method + context.Request.QueryString))
            {
                Content = new ByteArrayContent(body.ToArray()),
            };
            foreach (var header in context.Request.Headers.Where(h => !HopHeaders.Contains(h.Key, StringComparer.OrdinalIgnoreCase)))
            {
                if (!forward.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray())) forward.Content.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray());
            }
            using var response = await Components.Http.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
            Components.Invocation.Record(appId, target, (int)response.StatusCode);
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var header in response.Headers.Concat(response.Content.Headers).Where(h => !HopHeaders.Contains(h.Key, StringComparer.OrdinalIgnoreCase)))
            {
                context.Response.Headers[header.Key] = header.Value.ToArray();
            }
            await response.Content.CopyToAsync(context.Response.Body, context.RequestAborted);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException || (ex is TaskCanceledException && !context.RequestAborted.IsCancellationRequested))
        {
            Components.Invocation.Record(appId, target, 500);
            if (!context.Response.HasStarted) await DirectInvokeErrorAsync(context, appId, ex.Message);
        }
    }

    private static async Task DirectInvokeErrorAsync(HttpContext context, string appId, string error)
    {
        context.Response.StatusCode = StatusCodes.Status500InternalServerError;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync($"{{\"errorCode\":\"ERR_DIRECT_INVOKE\",\"message\":\"failed to invoke, id: {appId}, err: {JsonEncodedText.Encode(error)}\"}}");
    }

    private static string ActorKey(string type, string id, string key) => $"actors||{type}||{id}||{key}";

    private static readonly HashSet<int> HandedOut = [];

    /// <summary>
    /// A port for a server of the tests to bind next, free when asked, from 10000 up to below the kernel's ephemeral range
    /// (net.ipv4.ip_local_port_range). A port the kernel picked (bind to 0) came from that range, where every outgoing
    /// connection takes its source port too: between this call and the app's bind, a connection of another app could
    /// take it, and the app failed with "address already in use" (seen once in a full run, once publishing went over
    /// HTTP/1.1, which opens a connection per concurrent publish). Each port is handed out once per process.
    /// </summary>
    public static int FreePort()
    {
        const int floor = 10_000;
        int ceiling = EphemeralFloor() - 1;
        for (int attempt = 0; attempt < 200 && ceiling - floor >= 1000; attempt++)
        {
            int port = Random.Shared.Next(floor, ceiling + 1);
            lock (HandedOut)
            {
                if (!HandedOut.Add(port)) continue;
            }
            try
            {
                var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, port);
                probe.Start();
                probe.Stop();
                return port;
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Taken by a server of its own: try another.
            }
        }
        // No room below the ephemeral range on this machine: the kernel's pick, as before.
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int picked = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return picked;
    }

    private static int EphemeralFloor()
    {
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (range.Length == 2 && int.TryParse(range[0], System.Globalization.CultureInfo.InvariantCulture, out int low)) return low;
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return 32768;
    }

    public async ValueTask DisposeAsync()
    {
        Components.Invocation.Unregister(AppId, AppUrl);
        await _server.StopAsync();
        await _server.DisposeAsync();
    }
}
