using Microsoft.Extensions.Logging;

namespace DaprTrain.Cli;

/// <summary>
/// Engine events (faults, lease expiries, restores, dropped poison messages) as plain lines on the
/// command's output, prefixed with "event:". Debug chatter (every late duplicate) stays out.
/// </summary>
internal sealed class ConsoleEvents(TextWriter output, LogLevel minimum = LogLevel.Information) : ILoggerFactory, ILogger
{
    private readonly Lock _gate = new();

    public Action? BeforeWrite { get; set; }

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel)) return;
        lock (_gate)
        {
            BeforeWrite?.Invoke();
            output.WriteLine($"event: {formatter(state, exception)}");
        }
    }

    public void Dispose()
    {
    }
}
