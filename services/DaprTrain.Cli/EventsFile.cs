using System.Text;
using DaprTrain.Coordination.Progress;

namespace DaprTrain.Cli;

/// <summary>
/// <c>train --events FILE</c>: the job's progress events (schemas/progress-event.schema.json), one JSON object a line,
/// flushed line by line so the dashboard can follow the file while the job runs (<c>--tail FILE</c>) or replay it later.
/// The file is replaced; others may read it while it is written.
/// </summary>
internal sealed class EventsFile : IProgressSink, IDisposable
{
    private readonly StreamWriter _writer;

    public EventsFile(string path)
    {
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read);
        _writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { NewLine = "\n" };
    }

    public long Written { get; private set; }

    /// <summary>Why the file stopped being written (a full disk, say), or null: the events are not worth the run.</summary>
    public string? Failure { get; private set; }

    public void Write(ProgressEvent progress)
    {
        if (Failure is not null) return;
        try
        {
            _writer.WriteLine(progress.ToJson());
            _writer.Flush();
            Written++;
        }
        catch (IOException ex)
        {
            Failure = ex.Message;
        }
    }

    public void Dispose()
    {
        try
        {
            _writer.Dispose();
        }
        catch (IOException)
        {
            // Already reported through Failure: the last flush failed as the writes did.
        }
    }
}
