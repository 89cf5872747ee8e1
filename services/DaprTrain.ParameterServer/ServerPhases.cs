using DaprTrain.Engine.Telemetry;

namespace DaprTrain.ParameterServer;

/// <summary>The server's own splits of a round's phases (issue 16), kept out of the loop.</summary>
internal static class ServerPhases
{
    /// <summary>Closes the round (aggregate, step, weights message): the step's time goes to apply, the message's to encode, the rest to aggregate.</summary>
    public static byte[] CloseRound(this RoundPhases phases, ServerRuntime runtime) => runtime.Use(node =>
    {
        double stepped = node.OptimizerMs, encoded = node.EncodeMs;
        byte[] weights;
        using (phases.Time(RoundPhase.Aggregate)) weights = node.CloseRound();
        phases.Move(RoundPhase.Aggregate, RoundPhase.Apply, node.OptimizerMs - stepped);
        phases.Move(RoundPhase.Aggregate, RoundPhase.Encode, node.EncodeMs - encoded);
        return weights;
    });
}
