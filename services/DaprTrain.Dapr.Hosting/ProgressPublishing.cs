using System.Threading.Channels;
using Dapr.Client;
using DaprTrain.Contracts;
using DaprTrain.Coordination.Progress;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DaprTrain.Dapr.Hosting;

/// <summary>
/// Publishes a service's progress events (schemas/progress-event.schema.json) on the pub/sub topic
/// <see cref="DaprTopics.Progress"/> as JSON CloudEvents, for the dashboard. Off the training path: <see cref="Write"/>
/// only queues (a bounded queue; when the broker cannot keep up the oldest events are dropped and counted), and one
/// background loop publishes. A failed publish is logged once a minute at most and never reaches training.
/// </summary>
public sealed class DaprProgressPublisher : BackgroundService, IProgressSink
{
    private readonly DaprClient _dapr;
    private readonly ILogger<DaprProgressPublisher> _logger;
    private readonly TimeProvider _time;

    public DaprProgressPublisher(DaprClient dapr, ILogger<DaprProgressPublisher> logger, TimeProvider time)
    {
        _dapr = dapr;
        _logger = logger;
        _time = time;
        // DropOldest never refuses a write: what it drops is counted here (and shown in the warning below).
        _queue = Channel.CreateBounded<ProgressEvent>(new BoundedChannelOptions(Capacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, _ => Interlocked.Increment(ref _dropped));
    }

    public const int Capacity = 1024;

    private readonly Channel<ProgressEvent> _queue;
    private long _dropped;
    private long _failed;
    private long _published;
    private DateTimeOffset _lastWarning = DateTimeOffset.MinValue;

    public long Published => Interlocked.Read(ref _published);

    public long Failed => Interlocked.Read(ref _failed);

    public long Dropped => Interlocked.Read(ref _dropped);

    public void Write(ProgressEvent progress) => _queue.Writer.TryWrite(progress);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var progress in _queue.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                await _dapr.PublishByteEventAsync(DaprComponents.PubSub, DaprTopics.Progress, progress.ToUtf8Json(), "application/json", cancellationToken: stoppingToken);
                Interlocked.Increment(ref _published);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                Interlocked.Increment(ref _failed);
                var now = _time.GetUtcNow();
                if (now - _lastWarning > TimeSpan.FromMinutes(1))
                {
                    _lastWarning = now;
                    _logger.LogWarning("progress events cannot be published on {Topic} ({Error}); training goes on, {Failed} failed and {Dropped} dropped so far",
                        DaprTopics.Progress, ex.Message, Failed, Dropped);
                }
            }
        }
    }
}

/// <summary>Options of the progress events (section <c>Progress</c>).</summary>
public sealed class ProgressOptions
{
    public const string Section = "Progress";

    /// <summary>Publish progress events on the <c>progress</c> topic (default on; the dashboard shows them).</summary>
    public bool Enabled { get; set; } = true;
}

public static class ProgressPublishing
{
    /// <summary>
    /// A <see cref="ProgressEmitter"/> for this service, stamping its events with Job:JobId and the wall clock, publishing
    /// through <see cref="DaprProgressPublisher"/>; with Progress:Enabled false the events go nowhere.
    /// </summary>
    public static IServiceCollection AddProgressEvents(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ProgressOptions>().BindConfiguration(ProgressOptions.Section);
        var options = configuration.GetSection(ProgressOptions.Section).Get<ProgressOptions>() ?? new ProgressOptions();
        if (options.Enabled)
        {
            services.AddSingleton<DaprProgressPublisher>();
            services.AddHostedService(sp => sp.GetRequiredService<DaprProgressPublisher>());
            services.AddSingleton<IProgressSink>(sp => sp.GetRequiredService<DaprProgressPublisher>());
        }
        else
        {
            services.AddSingleton<IProgressSink, NoProgress>();
        }
        services.AddSingleton(sp => new ProgressEmitter(sp.GetRequiredService<IProgressSink>(), configuration["Job:JobId"] is { Length: > 0 } job ? job : "daprtrain",
            ProgressEmitter.WallClockMs, ProgressEmitter.ProcessStartSequence()));
        return services;
    }

    private sealed class NoProgress : IProgressSink
    {
        public void Write(ProgressEvent progress)
        {
        }
    }
}
