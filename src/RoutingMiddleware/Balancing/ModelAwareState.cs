using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Balancing;

/// <summary>
/// The state the <c>ModelAware</c> policy, its metrics scraper and its per-request feature share: each
/// destination's <see cref="DestinationSignals"/> and the <see cref="PrefixIndex"/>. One per host.
/// </summary>
internal sealed class ModelAwareState(IOptionsMonitor<ModelRoutingOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<DestinationState, DestinationSignals> _destinations = new(ReferenceEqualityComparer.Instance);
    private int _nextIndex = -1;

    public PrefixIndex Prefixes { get; } = new();

    public TimeProvider Time { get; } = time;

    /// <summary>Gets the current options (read once per pick).</summary>
    public ModelAwareOptions Options => options.CurrentValue.LoadBalancing;

    public DestinationSignals Get(DestinationState destination) =>
        _destinations.TryGetValue(destination, out var signals) ? signals : Add(destination);

    /// <summary>Forgets destinations no longer in the proxy configuration.</summary>
    public void Retain(HashSet<DestinationState> live)
    {
        foreach (var destination in _destinations.Keys)
        {
            if (!live.Contains(destination))
            {
                _destinations.TryRemove(destination, out _);
            }
        }
    }

    /// <summary>Gets how much a snapshot's metrics still count: 1 while fresh, falling linearly to 0 at <see cref="ModelAwareOptions.StaleAfter"/>.</summary>
    public static double Freshness(TimeSpan age, ModelAwareOptions options)
    {
        var fresh = options.ScrapeInterval * 2;
        if (age <= fresh)
        {
            return 1;
        }

        if (age >= options.StaleAfter || options.StaleAfter <= fresh)
        {
            return 0;
        }

        return 1 - ((age - fresh) / (options.StaleAfter - fresh));
    }

    private DestinationSignals Add(DestinationState destination) =>
        _destinations.GetOrAdd(destination, static (_, state) => new DestinationSignals(Interlocked.Increment(ref state._nextIndex) & 63), this);
}
