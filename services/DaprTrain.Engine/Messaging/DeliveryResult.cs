namespace DaprTrain.Engine.Messaging;

/// <summary>A subscriber's answer, with Dapr's meaning: Success acknowledges, Retry asks for redelivery, Drop discards.</summary>
public enum DeliveryStatus
{
    Success,
    Retry,
    Drop,
}

public readonly record struct DeliveryResult(DeliveryStatus Status, string? Reason = null)
{
    public static DeliveryResult Applied { get; } = new(DeliveryStatus.Success);

    public static DeliveryResult Duplicate { get; } = new(DeliveryStatus.Success, "duplicate");

    public static DeliveryResult Poison(string reason) => new(DeliveryStatus.Drop, reason);

    public static DeliveryResult Transient(string reason) => new(DeliveryStatus.Retry, reason);
}
