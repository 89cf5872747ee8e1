using DaprTrain.Engine.Messaging;

namespace DaprTrain.Dapr.Tests;

/// <summary>
/// Issue 16: a round's wait (<see cref="NodeRuntime{TNode}.UntilAsync"/>) looks again when the node has handled a delivery,
/// not only at the next poll. On a clock that never moves, no poll ever comes: only a delivery can end the wait.
/// </summary>
public sealed class NodeRuntimeWaitTests
{
    private sealed class Node : IDisposable
    {
        public int Held;

        public void Dispose()
        {
        }
    }

    private sealed class Runtime(bool wake) : NodeRuntime<Node>(wake);

    /// <summary>A clock that never moves: its timers never fire, so a poll never comes and no deadline passes.</summary>
    private sealed class FrozenClock : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(2026, 12, 2, 0, 0, 0, TimeSpan.Zero);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new Never();

        private sealed class Never : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task A_delivery_the_wait_is_for_ends_it_without_a_poll()
    {
        var runtime = new Runtime(wake: true);
        runtime.Start(new Node());
        var deliver = runtime.Deliver((node, _) => { node.Held++; return DeliveryResult.Applied; })!;
        var waiting = runtime.UntilAsync(new FrozenClock(), n => n.Held >= 2, TimeSpan.FromHours(1), TimeSpan.FromMilliseconds(10), CancellationToken.None);

        deliver([1]);
        await Task.Delay(50);
        waiting.IsCompleted.Should().BeFalse("one delivery of the two it waits for came");
        deliver([2]);
        (await waiting.WaitAsync(TimeSpan.FromSeconds(30))).Should().BeTrue();
    }

    [Fact]
    public async Task What_holds_already_ends_the_wait_at_once_and_cancelling_ends_it_too()
    {
        var runtime = new Runtime(wake: true);
        runtime.Start(new Node { Held = 3 });
        (await runtime.UntilAsync(new FrozenClock(), n => n.Held >= 2, TimeSpan.FromHours(1), TimeSpan.FromMilliseconds(10), CancellationToken.None)).Should().BeTrue();

        using var stop = new CancellationTokenSource();
        var waiting = runtime.UntilAsync(new FrozenClock(), n => n.Held >= 5, TimeSpan.FromHours(1), TimeSpan.FromMilliseconds(10), stop.Token);
        await stop.CancelAsync();
        var cancelled = () => waiting.WaitAsync(TimeSpan.FromSeconds(30));
        await cancelled.Should().ThrowAsync<OperationCanceledException>();
    }

    [Fact]
    public async Task Without_wake_on_delivery_the_wait_looks_again_only_at_its_poll()
    {
        var runtime = new Runtime(wake: false);
        runtime.Start(new Node());
        var deliver = runtime.Deliver((node, _) => { node.Held++; return DeliveryResult.Applied; })!;
        var waiting = runtime.UntilAsync(new FrozenClock(), n => n.Held >= 1, TimeSpan.FromHours(1), TimeSpan.FromMilliseconds(10), CancellationToken.None);

        deliver([1]);
        await Task.Delay(50);
        waiting.IsCompleted.Should().BeFalse("the frozen clock's poll never comes (the behaviour before issue 16, kept for measuring)");
    }
}
