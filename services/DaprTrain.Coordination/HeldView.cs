namespace DaprTrain.Coordination;

/// <summary>
/// The membership view a worker or the parameter server holds from round to round, and when it asks the coordinator for
/// a new one (issue 16).
/// A view is asked for only when there is reason to think it changed: none held yet; <see cref="Invalidate"/> after
/// anything that changes the job's membership or follows a fault (an error, a rejoin, a resynchronisation, a sync request
/// served, a wait that ran out, weights of a newer generation); between peers a round's decision that names another view
/// version than the one held (<see cref="RoundDecision.ViewVersion"/>: the coordinator bumps it with every change to what a
/// view holds, so a view of that version is the view it would answer); under a parameter server, where no decision comes,
/// a view <see cref="MaxAge"/> old (the server also after a round that lacked a member's gradient or brought one it could
/// not place: a sender its view does not name, or a message refused). With <c>everyRound</c> (Job:FewerCoordinatorCalls=false) it is asked for every round, as
/// before. Used from the round loop only (one caller at a time).
/// </summary>
public sealed class HeldView(ICoordinator coordinator, TimeProvider time, bool everyRound, TimeSpan? maxAge)
{
    private MembershipView? _view;
    private long _fetchedAt;
    private bool _stale = true;

    /// <summary>The view held, null before the first.</summary>
    public MembershipView? View => _view;

    /// <summary>How long a view is kept when no decision says whether it changed (null: as long as decisions say it has not).</summary>
    public TimeSpan? MaxAge => maxAge;

    /// <summary>How many times a view was asked for through <see cref="CurrentAsync"/>.</summary>
    public long Fetches { get; private set; }

    /// <summary>True when the next <see cref="CurrentAsync"/> asks the coordinator.</summary>
    public bool Stale => everyRound || _stale || _view is null;

    /// <summary>True when the view held has reached <see cref="MaxAge"/>.</summary>
    public bool Old => maxAge is { } age && _view is not null && time.GetElapsedTime(_fetchedAt) >= age;

    /// <summary>A view the worker got from another call (a join) or asked for itself.</summary>
    public void Take(MembershipView view)
    {
        _view = view;
        _fetchedAt = time.GetTimestamp();
        _stale = false;
    }

    /// <summary>The view held may be out of date: the next <see cref="CurrentAsync"/> asks the coordinator.</summary>
    public void Invalidate() => _stale = true;

    /// <summary>A round's decision: when it was taken under another view version than the one held, the next round asks for the view.</summary>
    public void Decided(RoundDecision decision)
    {
        if (_view is null || decision.ViewVersion < 0 || decision.ViewVersion != _view.Version) _stale = true;
    }

    /// <summary>The view for a round: the one held, or the coordinator's when it may have changed (<paramref name="orOld"/>: also when it is old).</summary>
    public async Task<MembershipView> CurrentAsync(bool orOld = false)
    {
        if (!Stale && !(orOld && Old)) return _view!;
        // Stays stale until the answer is in: a call that fails is made again by the next round.
        _stale = true;
        Fetches++;
        Take(await coordinator.GetViewAsync());
        return _view!;
    }
}
