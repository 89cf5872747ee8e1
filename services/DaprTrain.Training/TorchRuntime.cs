using TorchSharp;

namespace DaprTrain.Training;

/// <summary>Process-wide TorchSharp setup, done once, with an error that says how to fix a failed load.</summary>
public static class TorchRuntime
{
    private static readonly Lock Gate = new();
    private static bool _initialised;

    public static void EnsureInitialised(int? threads = null)
    {
        lock (Gate)
        {
            if (!_initialised)
            {
                try
                {
                    torch.InitializeDeviceType(DeviceType.CPU);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    throw new InvalidOperationException(
                        "TorchSharp's native library did not load. On Debian 12 the build patches libLibTorchSharp.so " +
                        "(see README, 'TorchSharp on Debian 12'); rebuild with 'dotnet build' so the patch runs, and do not " +
                        "copy the binaries from another machine's build. Original error: " + ex.Message, ex);
                }
                _initialised = true;
            }
            if (threads is int count)
            {
                ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count, nameof(threads));
                if (torch.get_num_threads() != count) torch.set_num_threads(count);
            }
        }
    }
}
