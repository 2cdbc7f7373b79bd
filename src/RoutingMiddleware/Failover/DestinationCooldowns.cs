using System.Collections.Concurrent;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Failover;

/// <summary>
/// Destinations that failed and are skipped until their cooldown ends (SPEC §13): the failover loop narrows
/// YARP's available destinations to those not cooling before the load balancer picks one. Keyed by cluster
/// and destination id, so a configuration reload that rebuilds a destination keeps its cooldown. Thread-safe.
/// </summary>
/// <remarks>
/// When a cooldown ends, one request probes the destination (half-open, as a circuit breaker does) while the
/// others keep skipping it for <see cref="ProbeWindow"/>: a success ends the cooldown, a failure starts a new
/// one; without this every request arriving at that moment would try the dead destination at once.
/// </remarks>
internal sealed class DestinationCooldowns(TimeProvider time)
{
    /// <summary>How long the other requests keep skipping a destination while one probes it.</summary>
    public static readonly TimeSpan ProbeWindow = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<(string Cluster, string Destination), long> _until = new();

    /// <summary>
    /// Raised when this process starts a cooldown (cluster, destination, period), so it can be shared with other
    /// replicas (SPEC §16); not raised for one applied through <see cref="Apply"/>.
    /// </summary>
    public event Action<string, string, TimeSpan>? CooledDown;

    /// <summary>Raised when this process ends a cooldown (cluster, destination); not raised by <see cref="Lift"/>.</summary>
    public event Action<string, string>? Ended;

    /// <summary>Starts (or extends) the cooldown of <paramref name="destination"/> for <paramref name="period"/>.</summary>
    public void CoolDown(string clusterId, DestinationState destination, TimeSpan period)
    {
        Apply(clusterId, destination.DestinationId, period);
        CooledDown?.Invoke(clusterId, destination.DestinationId, period);
    }

    /// <summary>Starts (or extends) a cooldown another replica started.</summary>
    public void Apply(string clusterId, string destinationId, TimeSpan period)
    {
        var until = time.GetTimestamp() + (long)(period.TotalSeconds * time.TimestampFrequency);
        _until.AddOrUpdate((clusterId, destinationId), until, (_, old) => Math.Max(old, until));
        if (_until.Count > 10_000)
        {
            Prune();
        }
    }

    /// <summary>Ends a cooldown another replica ended.</summary>
    public void Lift(string clusterId, string destinationId) => _until.TryRemove((clusterId, destinationId), out _);

    /// <summary>Ends the cooldown of <paramref name="destination"/> (a health check saw it answer).</summary>
    public void End(string clusterId, DestinationState destination)
    {
        if (_until.TryRemove((clusterId, destination.DestinationId), out _))
        {
            Ended?.Invoke(clusterId, destination.DestinationId);
        }
    }

    /// <summary>Ends the cooldown of a destination an attempt just succeeded on (the probe after a cooldown).</summary>
    public void Succeeded(string clusterId, DestinationState destination)
    {
        if (!_until.IsEmpty && _until.TryRemove((clusterId, destination.DestinationId), out _))
        {
            Ended?.Invoke(clusterId, destination.DestinationId);
        }
    }

    /// <summary>
    /// Returns how long <paramref name="destination"/> still cools down; zero when it does not, or when its cooldown
    /// has ended and this caller is the one to probe it.
    /// </summary>
    public TimeSpan Remaining(string clusterId, DestinationState destination)
    {
        var key = (clusterId, destination.DestinationId);
        if (_until.IsEmpty || !_until.TryGetValue(key, out var until))
        {
            return TimeSpan.Zero;
        }

        var now = time.GetTimestamp();
        if (until > now)
        {
            return TimeSpan.FromSeconds((double)(until - now) / time.TimestampFrequency);
        }

        // The cooldown is over: the first caller probes, the others wait for its outcome.
        var probe = now + (long)(ProbeWindow.TotalSeconds * time.TimestampFrequency);
        return _until.TryUpdate(key, probe, until) ? TimeSpan.Zero : Remaining(clusterId, destination);
    }

    private void Prune()
    {
        var now = time.GetTimestamp();
        foreach (var (key, until) in _until)
        {
            if (until <= now)
            {
                _until.TryRemove(key, out _);
            }
        }
    }
}
