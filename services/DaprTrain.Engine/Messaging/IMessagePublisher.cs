namespace DaprTrain.Engine.Messaging;

/// <summary>The publishing half of the gradient bus port: a message to a topic, delivered at least once to every subscriber.</summary>
public interface IMessagePublisher
{
    Task PublishAsync(string topic, byte[] message, CancellationToken cancellationToken = default);
}
