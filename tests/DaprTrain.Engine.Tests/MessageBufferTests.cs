using DaprTrain.Simulation.Messaging;
using DaprTrain.Engine.Messaging;

namespace DaprTrain.Engine.Tests;

public class MessageBufferTests
{
    [Fact]
    public void A_returned_buffer_carries_the_next_message_of_its_length_and_a_double_return_is_refused()
    {
        var pool = new MessageBufferPool(maxPerLength: 2);
        var first = pool.Rent(1000);
        first.Should().HaveCount(1000);
        pool.Return(first);
        pool.Rent(999).Should().NotBeSameAs(first, "only a buffer of the exact length fits a message");
        pool.Rent(1000).Should().BeSameAs(first);
        pool.Reused.Should().Be(1);
        pool.Allocated.Should().Be(2);

        pool.Return(first);
        var act = () => pool.Return(first);
        act.Should().Throw<InvalidOperationException>().WithMessage("*returned twice*");
    }

    [Fact]
    public void The_pool_keeps_at_most_its_bound_per_length()
    {
        var pool = new MessageBufferPool(maxPerLength: 1);
        var (a, b) = (pool.Rent(64), pool.Rent(64));
        pool.Return(a);
        pool.Return(b);
        pool.Rent(64).Should().BeSameAs(a);
        pool.Rent(64).Should().NotBeSameAs(b, "b was over the bound and left to the collector");
    }

    [Fact]
    public void The_broker_says_a_message_is_queued_until_its_last_copy_is_handled()
    {
        var bus = new InProcessBus(BusFaults.None, seed: 3, retryBackoffMs: 100);
        var payload = new byte[16];
        var other = new byte[16];
        int attempts = 0;
        using var two = bus.Subscribe("gradients", "worker-2",
            bytes => ReferenceEquals(bytes, payload) && ++attempts == 1 ? DeliveryResult.Transient("not ready") : DeliveryResult.Applied);
        using var three = bus.Subscribe("gradients", "worker-3", _ => DeliveryResult.Applied);
        bus.Publish("gradients", payload, now: 0, transitMs: 1, publisher: "worker-1");
        bus.Publish("gradients", other, now: 0, transitMs: 1, publisher: "worker-1");
        bus.IsQueued(payload).Should().BeTrue();

        bus.DeliverUntil(1);
        bus.IsQueued(payload).Should().BeTrue("worker-2 asked for its copy again");
        bus.IsQueued(other).Should().BeFalse("both copies of the other message were taken");
        bus.DeliverUntil(1000);
        attempts.Should().Be(2);
        bus.IsQueued(payload).Should().BeFalse();
    }
}
