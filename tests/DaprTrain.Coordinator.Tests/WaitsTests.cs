using DaprTrain.Coordination;
using DaprTrain.Dapr.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace DaprTrain.Coordinator.Tests;

/// <summary>
/// The services' round deadlines and lease renewals (DaprTrain.Dapr.Hosting's <see cref="Waits"/>, which every host
/// uses, this one included) on a fake clock: they wait on the host's TimeProvider, never on the wall clock.
/// </summary>
public sealed class WaitsTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 2, 9, 0, 0, TimeSpan.Zero);

    /// <summary>A fake clock that counts the timers created on it, so a test advances it only once a wait is armed.</summary>
    private sealed class Clock(FakeTimeProvider inner) : TimeProvider
    {
        private int _timers;

        public int Timers => Volatile.Read(ref _timers);

        public FakeTimeProvider Fake => inner;

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = inner.CreateTimer(callback, state, dueTime, period);
            Interlocked.Increment(ref _timers);
            return timer;
        }

        /// <summary>Waits (in real time, briefly) until the loop under test has armed its next timer, then moves the clock on.</summary>
        public async Task StepAsync(int armed, TimeSpan by)
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (Timers < armed)
            {
                if (DateTime.UtcNow > until) throw new TimeoutException($"the loop under test armed {Timers} timers, not {armed}");
                await Task.Delay(1);
            }
            inner.Advance(by);
        }
    }

    [Fact]
    public async Task A_round_deadline_passes_on_the_hosts_clock_and_not_before()
    {
        var clock = new Clock(new FakeTimeProvider(Start));
        int checks = 0;
        var wait = clock.UntilAsync(() => { Interlocked.Increment(ref checks); return false; }, TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(500), CancellationToken.None);

        for (int step = 1; step <= 3; step++)
        {
            await clock.StepAsync(step, TimeSpan.FromMilliseconds(500));
            wait.IsCompleted.Should().BeFalse($"only {step * 500} ms of the 2 s deadline have passed on the clock");
        }
        await clock.StepAsync(4, TimeSpan.FromMilliseconds(500));
        (await wait).Should().BeFalse("the condition never held");
        clock.GetUtcNow().Should().Be(Start + TimeSpan.FromSeconds(2));
        checks.Should().Be(5, "checked at 0, 0.5, 1, 1.5 and 2 s");
    }

    [Fact]
    public async Task A_wait_ends_as_soon_as_its_condition_holds()
    {
        var clock = new Clock(new FakeTimeProvider(Start));
        int checks = 0;
        // Holds from the third check on (the condition decides, not the test thread, so nothing races the loop).
        var wait = clock.UntilAsync(() => Interlocked.Increment(ref checks) >= 3, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(10), CancellationToken.None);
        await clock.StepAsync(1, TimeSpan.FromMilliseconds(10));
        await clock.StepAsync(2, TimeSpan.FromMilliseconds(10));
        (await wait).Should().BeTrue();
        clock.GetUtcNow().Should().Be(Start + TimeSpan.FromMilliseconds(20));
        clock.Timers.Should().Be(2, "no further poll once the condition held");
    }

    [Fact]
    public async Task Renewals_on_the_clock_keep_a_lease_and_a_holder_whose_lease_ran_out_is_told()
    {
        var clock = new Clock(new FakeTimeProvider(Start));
        var coordinator = new JobCoordinator("job", 2, TimeSpan.FromSeconds(2), clock, workersWriteCheckpoints: true);
        coordinator.Join("worker-1");
        coordinator.Join("worker-2");
        int expired = 0;
        using var renewing = new CancellationTokenSource();
        var lease = clock.RenewLeaseAsync(() => Task.FromResult(coordinator.Heartbeat("worker-1")), TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(200),
            () => Interlocked.Increment(ref expired), ex => throw ex, renewing.Token);

        // Ten seconds on the clock, five leases long: worker-1 renews every 500 ms and stays; worker-2 never does.
        for (int step = 1; step <= 20; step++) await clock.StepAsync(step, TimeSpan.FromMilliseconds(500));
        // The renewal at 10 s has run (its next wait is armed) before the test reads the coordinator, which is not thread-safe.
        await clock.StepAsync(21, TimeSpan.Zero);
        var view = coordinator.CurrentView();
        view.Members.Should().Equal("worker-1");
        view.Expired.Should().Equal("worker-2");
        expired.Should().Be(0);

        // worker-1 stops renewing (a paused process): two seconds later its lease is gone too.
        await renewing.CancelAsync();
        await lease;
        clock.Fake.Advance(TimeSpan.FromMilliseconds(2001));
        coordinator.CurrentView().Expired.Should().Equal("worker-1");

        // It comes back and renews: the coordinator no longer knows it, and the holder is told it was expelled.
        int armed = clock.Timers;
        using var again = new CancellationTokenSource();
        var back = clock.RenewLeaseAsync(() => Task.FromResult(coordinator.Heartbeat("worker-1")), TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(200),
            () => Interlocked.Increment(ref expired), ex => throw ex, again.Token);
        await clock.StepAsync(armed + 1, TimeSpan.FromMilliseconds(500));
        await clock.StepAsync(armed + 2, TimeSpan.Zero);
        expired.Should().Be(2, "each renewal after the lease ran out says so");
        await again.CancelAsync();
        await back;
    }
}
