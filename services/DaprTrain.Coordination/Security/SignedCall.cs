using System.Globalization;
using System.Text;

namespace DaprTrain.Coordination.Security;

/// <summary>
/// What a member signs for a coordinator call on a round's path (issue 11): reports, closes, weight hashes and sync requests.
/// The text names the call (a signature for one call is none for another), the job, the caller and every field the
/// coordinator acts on, so a signed call cannot be turned into another by changing a field. Sender ids are the caller's to
/// choose and may hold any character, so each is written with its length: no two lists give the same text. Joins, leaves
/// and heartbeats have theirs in <see cref="JobAdmission"/>.
/// </summary>
/// <remarks>
/// Replays. A report and a sync request carry a sequence number that rises with every call of that kind by the caller's
/// registration (two counters, not one: each kind is sent by one loop, one call at a time, so its numbers arrive in order,
/// which heartbeats, on their own timer, would not keep with them). The coordinator acts on a number only when it is above
/// the last one it took, so a recorded report cannot overwrite a newer one of the same round, and a recorded sync request
/// cannot flip the member's state back. A close, a try-close and a weight hash need none: closing a decided round answers
/// its decision and changes nothing, a try-close closes only when every member reported or the caller's own deadline has
/// passed, and a member states one weight hash per round, which a replay states again.
/// </remarks>
public sealed class SignedCall
{
    private readonly string _text;

    private SignedCall(string name, string caller, string text)
    {
        Name = name;
        Caller = caller;
        _text = text;
    }

    /// <summary>The call's name, for a refusal's reason ("report", "close", ...).</summary>
    public string Name { get; }

    /// <summary>Whose registered key must have signed it.</summary>
    public string Caller { get; }

    internal byte[] Bytes() => Encoding.UTF8.GetBytes(_text);

    public override string ToString() => _text;

    /// <summary>The deadline as calls carry it: whole milliseconds from 1 to <see cref="int.MaxValue"/> (what the actor's DTOs hold).</summary>
    public static int DeadlineMs(TimeSpan deadline) => (int)Math.Clamp(deadline.TotalMilliseconds, 1, int.MaxValue);

    /// <summary>A member's report of the senders it holds for a round (the plain report, which closes nothing).</summary>
    public static SignedCall Report(string job, string member, long sequence, int generation, long round, IReadOnlyList<string> received) =>
        new("report", member, WithReceived(Text("report", job, member, $"{sequence}\n{generation}\n{round}"), received));

    /// <summary>A report that closes the round when it completes it or when <paramref name="deadline"/> since the first report has passed.</summary>
    public static SignedCall ReportAndTryClose(string job, string member, long sequence, int generation, long round, IReadOnlyList<string> received, TimeSpan deadline) =>
        new("report", member, WithReceived(Text("report-and-try-close", job, member, $"{sequence}\n{generation}\n{round}\n{DeadlineMs(deadline)}"), received));

    /// <summary>Closes the round with the reports it has, whoever has not reported.</summary>
    public static SignedCall CloseRound(string job, string caller, int generation, long round) =>
        new("close", caller, Text("close-round", job, caller, $"{generation}\n{round}"));

    /// <summary>Closes the round if every member reported or <paramref name="deadline"/> since the first report has passed.</summary>
    public static SignedCall TryCloseRound(string job, string caller, int generation, long round, TimeSpan deadline) =>
        new("try-close", caller, Text("try-close-round", job, caller, $"{generation}\n{round}\n{DeadlineMs(deadline)}"));

    /// <summary>A replica's weight hash after a round (16 hex digits, as the actor's DTO carries it).</summary>
    public static SignedCall WeightHash(string job, string member, long round, ulong hash) =>
        new("weight hash", member, Text("weight-hash", job, member, $"{round}\n{hash:x16}"));

    /// <summary>
    /// <paramref name="caller"/> asks a state for <paramref name="member"/> (pending) or says it has one; only the member itself
    /// asks, and only it or the checkpoint writer that served it clear the request.
    /// </summary>
    public static SignedCall SyncRequest(string job, string caller, long sequence, string member, bool pending) =>
        new("sync request", caller, Text("sync-request", job, caller, $"{sequence}\n{member.Length}:{member}\n{(pending ? "pending" : "done")}"));

    /// <summary>
    /// What the coordinator signs of a round's decision (issue 16: <see cref="DecisionKey"/>): the job, the round, its
    /// generation, the view version it was taken under and both lists in the decision's order. A peer that verifies it
    /// holds what the coordinator would answer it for that round.
    /// </summary>
    public static SignedCall Decision(string job, RoundDecision decision) =>
        new("decision", "coordinator", WithReceived(WithReceived(Text("decision", job, "coordinator",
            $"{decision.Generation}\n{decision.Round}\n{decision.ViewVersion}"), decision.Included), decision.Reporters));

    // Numbers in the invariant culture: the signer and the coordinator are other processes, maybe under other cultures.
    private static string Text(string call, string job, string caller, FormattableString fields) =>
        $"daprtrain-{call}\n{job}\n{caller}\n" + fields.ToString(CultureInfo.InvariantCulture);

    private static string WithReceived(string text, IReadOnlyList<string> received)
    {
        // In the order sent: the actor verifies the list as it arrived, and a set's order does not change what it stores.
        var all = new StringBuilder(text, text.Length + 16 * received.Count + 8).Append('\n').Append(received.Count.ToString(CultureInfo.InvariantCulture));
        foreach (string sender in received) all.Append('\n').Append(sender.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(sender);
        return all.ToString();
    }
}
