namespace DaprTrain.Engine.Messaging;

/// <summary>A subscriber's answer, with Dapr's meaning: Success acknowledges, Retry asks for redelivery, Drop discards.</summary>
public enum DeliveryStatus
{
    Success,
    Retry,
    Drop,
}

/// <param name="Late">Dropped because its round or generation is over: expected now and then, not poison.</param>
public readonly record struct DeliveryResult(DeliveryStatus Status, string? Reason = null, bool Late = false)
{
    public static DeliveryResult Applied { get; } = new(DeliveryStatus.Success);

    public static DeliveryResult Duplicate { get; } = new(DeliveryStatus.Success, "duplicate");

    public static DeliveryResult Poison(string reason) => new(DeliveryStatus.Drop, reason);

    public static DeliveryResult Stale(string reason) => new(DeliveryStatus.Drop, "stale: " + reason, Late: true);

    public static DeliveryResult Transient(string reason) => new(DeliveryStatus.Retry, reason);
}
