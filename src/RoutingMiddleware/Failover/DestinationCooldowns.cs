using System.Collections.Concurrent;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Failover;

/// <summary>
/// Destinations that failed and are skipped until their cooldown ends (SPEC §13): the failover loop narrows
/// YARP's available destinations to those not cooling before the load balancer picks one. Keyed by cluster
/// and destination id, so a configuration reload that rebuilds a destination keeps its cooldown. Thread-safe.
/// </summary>
internal sealed class DestinationCooldowns(TimeProvider time)
{
    private readonly ConcurrentDictionary<(string Cluster, string Destination), long> _until = new();

    /// <summary>Starts (or extends) the cooldown of <paramref name="destination"/> for <paramref name="period"/>.</summary>
    public void CoolDown(string clusterId, DestinationState destination, TimeSpan period)
    {
        var until = time.GetTimestamp() + (long)(period.TotalSeconds * time.TimestampFrequency);
        _until.AddOrUpdate((clusterId, destination.DestinationId), until, (_, old) => Math.Max(old, until));
        if (_until.Count > 10_000)
        {
            Prune();
        }
    }

    /// <summary>Ends the cooldown of <paramref name="destination"/> (a health check saw it answer).</summary>
    public void End(string clusterId, DestinationState destination) => _until.TryRemove((clusterId, destination.DestinationId), out _);

    /// <summary>Returns how long <paramref name="destination"/> still cools down; zero when it does not.</summary>
    public TimeSpan Remaining(string clusterId, DestinationState destination)
    {
        if (_until.IsEmpty || !_until.TryGetValue((clusterId, destination.DestinationId), out var until))
        {
            return TimeSpan.Zero;
        }

        var left = until - time.GetTimestamp();
        return left > 0 ? TimeSpan.FromSeconds((double)left / time.TimestampFrequency) : TimeSpan.Zero;
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
