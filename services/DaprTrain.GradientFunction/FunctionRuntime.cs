using System.Buffers;
using System.ComponentModel.DataAnnotations;
using DaprTrain.Dapr;
using DaprTrain.Engine.Messaging;
using DaprTrain.Training.Data;
using Microsoft.Extensions.Options;

namespace DaprTrain.GradientFunction;

/// <summary>The function instance's own settings (section "Function"), apart from the job's.</summary>
public sealed class GradientFunctionOptions
{
    public const string Section = "Function";

    /// <summary>
    /// For experiments: latency added to every invocation, as a slower platform would add (and what lets a test kill an
    /// instance while an invocation is in it). 0 in production.
    /// </summary>
    [Range(0, 600_000)]
    public int ExtraLatencyMs { get; set; }

    /// <summary>Answers kept by idempotency key, so that a retry of an invocation this instance already computed is answered without computing it again.</summary>
    [Range(0, 64)]
    public int CachedAnswers { get; set; } = 8;

    /// <summary>
    /// Invocations an instance takes at once, the one it computes included; more are refused with 503 before their bodies
    /// are read (the worker retries, and service invocation may route the retry to another instance). Each holds its body
    /// (the weights) while it waits: this bounds the memory an instance spends on waiting invocations.
    /// </summary>
    [Range(1, 256)]
    public int MaxConcurrent { get; set; } = 4;
}

/// <summary>
/// One instance of the gradient function: the job's model code and training data, loaded once at start (the cold
/// start), and nothing kept between invocations but a few answers by idempotency key. Invocations are computed one at a
/// time, as a function instance serves one request at a time; more instances serve more at once.
/// </summary>
public sealed class FunctionRuntime : IDisposable
{
    private readonly TrainingJobOptions _job;
    private readonly GradientFunctionOptions _options;
    private readonly ILogger<FunctionRuntime> _logger;
    private readonly Lazy<Task<(DaprTrain.Engine.Nodes.GradientFunction Function, TrainingData Data)>> _loaded;
    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly Lock _cacheGate = new();
    private readonly LinkedList<(string Key, byte[] Answer)> _cache = new();
    private long _served;
    private long _fromCache;
    private long _refused;
    private long _busy;
    private readonly IHostApplicationLifetime _lifetime;
    private int _inFlight;
    private long _computeTicks;

    public FunctionRuntime(IOptions<TrainingJobOptions> job, IOptions<GradientFunctionOptions> options, ILogger<FunctionRuntime> logger, IHostApplicationLifetime lifetime)
    {
        _lifetime = lifetime;
        _job = job.Value;
        _options = options.Value;
        _logger = logger;
        _loaded = new(() => Task.Run(() =>
        {
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            var data = _job.LoadData();
            var function = new DaprTrain.Engine.Nodes.GradientFunction(_job.Trainer());
            _logger.LogInformation("gradient function for job {Job} ready in {Ms:F0} ms: {Model} ({Parameters} parameters), {Data}",
                _job.JobId, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, _job.Model, function.ParameterCount, data.Description);
            return (function, data);
        }));
    }

    /// <summary>Starts loading the model and the data (the instance's cold start), so that the first invocation does not pay all of it.</summary>
    public void Warm() => _loaded.Value.ContinueWith(load =>
    {
        // An instance that cannot load its model or data can never answer: it stops, so that its orchestrator restarts it
        // (and a scaler does not keep starting instances that answer 500 while /health says 200).
        _logger.LogCritical(load.Exception, "the gradient function could not load the model or the data; stopping");
        _lifetime.StopApplication();
    }, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);

    public bool Ready => _loaded.IsValueCreated && _loaded.Value.IsCompletedSuccessfully;

    public object Status() => new
    {
        job = _job.JobId,
        ready = Ready,
        served = Interlocked.Read(ref _served),
        fromCache = Interlocked.Read(ref _fromCache),
        refused = Interlocked.Read(ref _refused),
        busy = Interlocked.Read(ref _busy),
        inFlight = Volatile.Read(ref _inFlight),
        // Forward and backward passes and the gradient's export only (not the wait for the turn, nor ExtraLatencyMs).
        computeMs = Math.Round(System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _computeTicks)).TotalMilliseconds, 1),
    };

    /// <summary>POST /gradient: an invocation in (<see cref="FunctionInvocationCodec"/>), the share's gradient out (<see cref="WireCodec"/>), or 400/413 with the reason.</summary>
    public async Task<IResult> InvokeAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _inFlight) > _options.MaxConcurrent)
        {
            Interlocked.Decrement(ref _inFlight);
            return Refuse(StatusCodes.Status503ServiceUnavailable, $"busy: {_options.MaxConcurrent} invocations are already here (Function:MaxConcurrent)");
        }
        try
        {
            var (function, data) = await _loaded.Value.WaitAsync(cancellationToken);
            long limit = FunctionInvocationCodec.MaxLength(_job.BatchSize, function.ParameterCount);
            var body = await ReadBoundedAsync(request, limit);
            if (body is null) return Refuse(StatusCodes.Status413PayloadTooLarge, $"an invocation of the {_job.Model} model with at most {_job.BatchSize} samples is at most {limit} bytes");
            FunctionInvocation invocation;
            try
            {
                invocation = FunctionInvocationCodec.Decode(body, _job.BatchSize, data.Train.Count, function.ParameterCount);
            }
            catch (MessageRejectedException ex)
            {
                return Refuse(StatusCodes.Status400BadRequest, ex.Reason);
            }
            if (invocation.JobId != _job.JobId) return Refuse(StatusCodes.Status400BadRequest, $"the invocation is for job '{invocation.JobId}'; this function serves job '{_job.JobId}'");
            // The cache is keyed on what was asked, not only on its name: a round recomputed after a state transfer asks
            // again under the same key with other weights or samples, and a caller must not get another's gradient.
            string key = invocation.IdempotencyKey + "/" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(body));
            if (Cached(key) is { } cached)
            {
                Interlocked.Increment(ref _fromCache);
                return Results.Bytes(cached, "application/octet-stream");
            }

            await _turn.WaitAsync(cancellationToken);
            try
            {
                if (_options.ExtraLatencyMs > 0) await Task.Delay(_options.ExtraLatencyMs, cancellationToken);
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                float[] gradient = function.Invoke(invocation.Weights.Span, data.Train, invocation.Samples);
                Interlocked.Add(ref _computeTicks, System.Diagnostics.Stopwatch.GetTimestamp() - started);
                byte[] answer = WireCodec.Encode(new WireMessage(MessageKind.Gradient, invocation.JobId, invocation.Generation, invocation.Round, invocation.Worker,
                    invocation.Samples.Length, invocation.Share, 0, gradient));
                Remember(key, answer);
                Interlocked.Increment(ref _served);
                return Results.Bytes(answer, "application/octet-stream");
            }
            finally
            {
                _turn.Release();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private IResult Refuse(int status, string reason)
    {
        // A busy instance (503) refuses nothing about the invocation itself: it may be sent again.
        if (status < 500) Interlocked.Increment(ref _refused);
        else Interlocked.Increment(ref _busy);
        _logger.LogWarning("refused an invocation ({Status}): {Reason}", status, reason);
        return Results.Json(new { error = reason }, statusCode: status);
    }

    private byte[]? Cached(string key)
    {
        lock (_cacheGate) return _cache.FirstOrDefault(e => e.Key == key).Answer;
    }

    private void Remember(string key, byte[] answer)
    {
        if (_options.CachedAnswers == 0) return;
        lock (_cacheGate)
        {
            _cache.AddFirst((key, answer));
            while (_cache.Count > _options.CachedAnswers) _cache.RemoveLast();
        }
    }

    /// <summary>The body, or null (the rest read and forgotten, so the caller gets the 413) when it is longer than <paramref name="limit"/>.</summary>
    private static async Task<byte[]?> ReadBoundedAsync(HttpRequest request, long limit)
    {
        bool over = request.ContentLength > limit;
        var buffer = over ? null : new byte[(int)Math.Min(request.ContentLength ?? 64 * 1024, limit) + 1];
        int length = 0;
        var scratch = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (true)
            {
                var target = over ? scratch.AsMemory() : buffer.AsMemory(length);
                int read = await request.Body.ReadAsync(target, request.HttpContext.RequestAborted);
                if (read == 0) break;
                if (over) continue;
                length += read;
                if (length > limit) over = true;
                else if (length == buffer!.Length) Array.Resize(ref buffer, (int)Math.Min(buffer.Length * 2L, limit + 1));
            }
        }
        catch (BadHttpRequestException)
        {
            // Over Kestrel's own limit: Kestrel closes the connection; nothing more to read.
            over = true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
        return over ? null : buffer!.AsSpan(0, length).ToArray();
    }

    public void Dispose()
    {
        if (_loaded.IsValueCreated && _loaded.Value.IsCompletedSuccessfully)
        {
            _loaded.Value.Result.Function.Dispose();
            _loaded.Value.Result.Data.Dispose();
        }
        _turn.Dispose();
    }
}
