namespace DaprTrain.Dapr.Hosting;

/// <summary>
/// Waits and deadlines on the host's <see cref="TimeProvider"/> (the system clock in a service, a fake one in tests),
/// never on DateTime.UtcNow: round deadlines, lease renewals and sidecar polls all go through here.
/// </summary>
public static class Waits
{
    /// <summary>Polls <paramref name="done"/> until it holds or <paramref name="timeout"/> has passed; true when it held.</summary>
    public static async Task<bool> UntilAsync(this TimeProvider time, Func<Task<bool>> done, TimeSpan timeout, TimeSpan poll, CancellationToken cancellationToken)
    {
        var until = time.GetUtcNow() + timeout;
        while (true)
        {
            if (await done()) return true;
            if (time.GetUtcNow() >= until) return false;
            await Task.Delay(poll, time, cancellationToken);
        }
    }

    public static Task<bool> UntilAsync(this TimeProvider time, Func<bool> done, TimeSpan timeout, TimeSpan poll, CancellationToken cancellationToken) =>
        time.UntilAsync(() => Task.FromResult(done()), timeout, poll, cancellationToken);

    /// <summary>
    /// Renews a lease every <paramref name="every"/> until cancelled. <paramref name="renew"/> returns false when the
    /// lease is already gone (the holder was expelled): <paramref name="expired"/> is then called, and renewals go on.
    /// Transient failures are reported to <paramref name="failed"/> and retried after <paramref name="retry"/>.
    /// </summary>
    public static async Task RenewLeaseAsync(this TimeProvider time, Func<Task<bool>> renew, TimeSpan every, TimeSpan retry,
        Action expired, Action<Exception> failed, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (!await renew()) expired();
                await Task.Delay(every, time, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (DaprErrors.IsTransient(ex))
            {
                failed(ex);
                try
                {
                    await Task.Delay(retry, time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }
}
