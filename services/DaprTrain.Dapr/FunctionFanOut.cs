using System.Diagnostics.Metrics;
using System.Net.Http.Headers;
using Dapr.Client;
using DaprTrain.Contracts;
using DaprTrain.Engine.Messaging;
using DaprTrain.Engine.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DaprTrain.Dapr;

/// <summary>
/// A worker's fan-out to the gradient-function app through Dapr service invocation: every share of the batch is one
/// invocation, all in parallel; a failed or timed-out attempt is tried again (same bytes, same idempotency key; daprd
/// may route it to another instance) after a back-off, and a share that fails every attempt, or that the function
/// refuses (4xx: the same bytes would be refused again), is computed by the worker itself. The answer is checked as a
/// gradient on the broker is (<see cref="WireCodec"/>) and against the invocation it answers.
/// </summary>
/// <remarks>
/// Why service invocation rather than Dapr Workflow activities: an invocation is one HTTP request through the two
/// sidecars, with nothing stored; a workflow activity's input and output are written to the workflow state store
/// (weights in, a gradient out, per share and round: about 800 kB of state writes per MLP share), its scheduling goes
/// through the Dapr scheduler, and the worker needs none of what that buys (durable replay of a long-running
/// orchestration): a round that fails is recomputed, not resumed. Retries, timeouts and the local fallback are here.
/// </remarks>
public sealed class FunctionFanOut : IDisposable
{
    private readonly IOptions<FunctionOptions> options;
    private readonly ILogger<FunctionFanOut> logger;
    private readonly TimeProvider time;
    private readonly Lazy<HttpClient> _http;

    public FunctionFanOut(IOptions<FunctionOptions> options, ILogger<FunctionFanOut> logger, TimeProvider time)
        : this(options, logger, time, daprEndpoint: null)
    {
    }

    /// <param name="daprEndpoint">The sidecar's HTTP endpoint; null for DAPR_HTTP_ENDPOINT or DAPR_HTTP_PORT, as the SDK finds it.</param>
    internal FunctionFanOut(IOptions<FunctionOptions> options, ILogger<FunctionFanOut> logger, TimeProvider time, string? daprEndpoint)
    {
        this.options = options;
        this.logger = logger;
        this.time = time;
        // The SDK's invocation client: requests to http://{app id}/{method} go to the sidecar's /v1.0/invoke/{app id}/method/{method},
        // with DAPR_API_TOKEN. Each attempt has its own timeout, so the client has none.
        _http = new(() =>
        {
            var client = DaprClient.CreateInvokeHttpClient(options.Value.AppId, daprEndpoint, Environment.GetEnvironmentVariable("DAPR_API_TOKEN"));
            client.Timeout = Timeout.InfiniteTimeSpan;
            return client;
        });
    }

    private static readonly UpDownCounter<long> PendingGauge = TrainingMetrics.Meter.CreateUpDownCounter<long>("daprtrain.function.pending", "{invocation}",
        "Gradient-function shares a worker waits for (in flight or backing off before a retry): what a KEDA trigger scales the function app on");

    private long _pending;
    private long _attempts;
    private long _served;
    private long _retries;
    private long _refused;
    private long _fallbacks;
    private long _answeredTicks;

    /// <summary>Shares waiting for a function now (in flight or between attempts).</summary>
    public long Pending => Interlocked.Read(ref _pending);

    public FunctionCounters Counters => new(Interlocked.Read(ref _attempts), Interlocked.Read(ref _served), Interlocked.Read(ref _retries),
        Interlocked.Read(ref _refused), Interlocked.Read(ref _fallbacks), Pending,
        Math.Round(System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _answeredTicks)).TotalMilliseconds, 1));

    /// <summary>
    /// The gradients of <paramref name="invocations"/>, in their order: from the function app, or from
    /// <paramref name="local"/> for a share the app could not compute. Throws only when <paramref name="cancellationToken"/> ends.
    /// </summary>
    public async Task<(int Samples, ReadOnlyMemory<float> Gradient)[]> ComputeAsync(IReadOnlyList<FunctionInvocation> invocations,
        Func<FunctionInvocation, float[]> local, CancellationToken cancellationToken)
    {
        var shares = invocations.Select(invocation => ComputeShareAsync(invocation, local, cancellationToken)).ToArray();
        return await Task.WhenAll(shares);
    }

    private async Task<(int Samples, ReadOnlyMemory<float> Gradient)> ComputeShareAsync(FunctionInvocation invocation, Func<FunctionInvocation, float[]> local,
        CancellationToken cancellationToken)
    {
        var settings = options.Value;
        byte[] body = FunctionInvocationCodec.Encode(invocation);
        int waiting = 1;
        Interlocked.Increment(ref _pending);
        PendingGauge.Add(1);
        try
        {
            string? failure = null;
            for (int attempt = 1; attempt <= settings.Attempts; attempt++)
            {
                if (attempt > 1)
                {
                    Interlocked.Increment(ref _retries);
                    await Task.Delay(settings.BackoffBefore(attempt), time, cancellationToken);
                }
                Interlocked.Increment(ref _attempts);
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                var (gradient, problem, refused) = await AttemptAsync(invocation, body, settings, cancellationToken);
                if (gradient is not null)
                {
                    Interlocked.Add(ref _answeredTicks, System.Diagnostics.Stopwatch.GetTimestamp() - started);
                    Interlocked.Increment(ref _served);
                    TrainingMetrics.Invocations.Add(1, new KeyValuePair<string, object?>("daprtrain.outcome", "success"));
                    return (invocation.Samples.Length, gradient.Value);
                }
                failure = problem;
                TrainingMetrics.Invocations.Add(1, new KeyValuePair<string, object?>("daprtrain.outcome", refused ? "refused" : "failed"));
                if (refused)
                {
                    Interlocked.Increment(ref _refused);
                    break;
                }
                logger.LogWarning("{Invocation}: attempt {Attempt} of {Attempts} failed: {Problem}", invocation.IdempotencyKey, attempt, settings.Attempts, problem);
            }
            Interlocked.Increment(ref _fallbacks);
            logger.LogWarning("{Invocation}: the function app did not compute it ({Problem}); the worker computes it itself", invocation.IdempotencyKey, failure);
            // No longer pending for a function: the gauge a scaler reads must not count what the worker computes.
            Done();
            return (invocation.Samples.Length, local(invocation));
        }
        finally
        {
            Done();
        }

        void Done()
        {
            if (Interlocked.Exchange(ref waiting, 0) == 0) return;
            Interlocked.Decrement(ref _pending);
            PendingGauge.Add(-1);
        }
    }

    private async Task<(ReadOnlyMemory<float>? Gradient, string? Problem, bool Refused)> AttemptAsync(FunctionInvocation invocation, byte[] body,
        FunctionOptions settings, CancellationToken cancellationToken)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(TimeSpan.FromMilliseconds(settings.TimeoutMs));
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, DaprMethods.Gradient) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            request.Headers.Add("Idempotency-Key", invocation.IdempotencyKey);
            using var response = await _http.Value.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, attempt.Token);
            // The gradient is as long as the weights; the answer may not claim more (header and identifiers aside).
            long limit = 4L * invocation.Weights.Length + 2 * 1024;
            var read = await ReadBoundedAsync(response.Content, limit, attempt.Token);
            if (!response.IsSuccessStatusCode)
            {
                string text = read is null ? "(a body over the limit)" : Printable(read);
                bool refused = (int)response.StatusCode is >= 400 and < 500 and not 404 and not 408 and not 429;
                return (null, $"HTTP {(int)response.StatusCode}: {text}", refused);
            }
            if (read is null) return (null, $"an answer over {limit} bytes", false);
            var answer = WireCodec.Decode(read);
            return invocation.Mismatch(answer) is { } mismatch ? (null, mismatch, false) : (answer.Values, null, false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, $"no answer within {settings.TimeoutMs} ms", false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            // IOException: the connection dropped while the answer was read (an instance or its sidecar killed mid-answer).
            return (null, ex.Message, false);
        }
        catch (MessageRejectedException ex)
        {
            return (null, "a malformed answer: " + ex.Reason, false);
        }
    }

    /// <summary>The body, or null when it is longer than <paramref name="limit"/> (reading stops there).</summary>
    private static async Task<byte[]?> ReadBoundedAsync(HttpContent content, long limit, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > limit) return null;
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[(int)Math.Min(content.Headers.ContentLength ?? 64 * 1024, limit) + 1];
        int length = 0, read;
        while ((read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
            if (length > limit) return null;
            if (length == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(buffer.Length * 2L, limit + 1));
        }
        return length == buffer.Length ? buffer : buffer[..length];
    }

    public void Dispose()
    {
        if (_http.IsValueCreated) _http.Value.Dispose();
    }

    private static string Printable(byte[] bytes)
    {
        string text = System.Text.Encoding.UTF8.GetString(bytes, 0, Math.Min(bytes.Length, 300));
        return new string(text.Select(c => char.IsControl(c) ? ' ' : c).ToArray());
    }
}

/// <summary>
/// What a worker's fan-out did so far: attempts, shares the functions computed, retries, refusals, shares computed
/// locally, shares waiting now, and the wall time of the answered attempts (request sent to gradient decoded, summed).
/// </summary>
public sealed record FunctionCounters(long Attempts, long Served, long Retries, long Refused, long Fallbacks, long Pending, double AnsweredMs);
