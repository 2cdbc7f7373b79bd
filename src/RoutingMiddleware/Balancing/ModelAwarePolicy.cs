using System.Numerics;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Balancing;

/// <summary>
/// YARP load-balancing policy <c>ModelAware</c> (SPEC §17): picks, among the destinations it is given (YARP's
/// health, session affinity and the gateway's failover narrow them first), the one with the highest score
/// <c>PrefixWeight·prefix + AdapterWeight·adapter + InFlightTokensWeight·tokens + freshness·(QueueWeight·queue + KvCacheWeight·kv)</c>,
/// each signal in [0, 1]:
/// <list type="bullet">
/// <item>prefix: the share of the prompt's leading text last sent there (<see cref="PrefixIndex"/>);</item>
/// <item>adapter: 1 when the request's adapter is running or waiting there (scraped) or was recently sent there;</item>
/// <item>tokens: <c>1 − inFlight / (max inFlight + this request's tokens)</c>, the gateway's own count;</item>
/// <item>queue: <c>1 − waiting / (max waiting + 1)</c>; kv: <c>1 − KV-cache use</c>, both scraped.</item>
/// </list>
/// Scraped signals fade with their age (<see cref="ModelAwareState.Freshness"/>) towards a neutral 0.5 (so a
/// destination without metrics is neither preferred nor avoided); with none, the policy is
/// least-outstanding-tokens plus the gateway's own prefix and adapter hints. Ties go to a random one of them.
/// </summary>
/// <remarks>Thread-safe; allocation-free per pick except the feature of a request the middleware did not describe.</remarks>
internal sealed class ModelAwarePolicy(ModelAwareState state) : ILoadBalancingPolicy
{
    /// <summary>The policy's name in a cluster's <c>LoadBalancingPolicy</c>.</summary>
    public const string PolicyName = "ModelAware";

    private const double Neutral = 0.5;

    [ThreadStatic]
    private static DestinationSignals[]? t_signals;

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var count = availableDestinations.Count;
        if (count == 0)
        {
            return null;
        }

        var request = context.Features.Get<ModelAwareRequest>();
        if (request is null)
        {
            request = ModelAwareRequest.Bare();
            context.Features.Set(request);
            context.Response.RegisterForDispose(request);
        }

        var options = state.Options;
        var signals = t_signals is { } cached && cached.Length >= count ? cached : t_signals = new DestinationSignals[Math.Max(count, 16)];
        for (var i = 0; i < count; i++)
        {
            signals[i] = state.Get(availableDestinations[i]);
        }

        var pick = count == 1 ? 0 : Pick(request, signals.AsSpan(0, count), options, state.Time.GetTimestamp());
        var chosen = signals[pick];
        request.Assign(chosen, request.PromptTokens + options.OutputTokenAllowance);
        Record(request, chosen.Index);
        Array.Clear(signals, 0, count);
        return availableDestinations[pick];
    }

    /// <summary>Scores <paramref name="candidates"/> for <paramref name="request"/> and returns the index of the best.</summary>
    internal int Pick(ModelAwareRequest request, ReadOnlySpan<DestinationSignals> candidates, ModelAwareOptions options, long now)
    {
        var count = candidates.Length;
        Span<int> matched = stackalloc int[64];
        MatchPrefixes(request.Blocks, state.Prefixes, matched);
        var adapterHint = request.Adapter is null ? 0UL : state.Prefixes.Get(request.AdapterHash);

        long maxTokens = 0;
        double maxWaiting = 0;
        for (var i = 0; i < count; i++)
        {
            maxTokens = Math.Max(maxTokens, candidates[i].InFlightTokens);
            if (candidates[i].Metrics is { } snapshot)
            {
                maxWaiting = Math.Max(maxWaiting, snapshot.Metrics.Waiting);
            }
        }

        var cost = request.PromptTokens + options.OutputTokenAllowance;
        var start = Random.Shared.Next(count);
        var best = start;
        var bestScore = double.NegativeInfinity;
        for (var n = 0; n < count; n++)
        {
            var i = start + n < count ? start + n : start + n - count;
            var candidate = candidates[i];
            var score = options.InFlightTokensWeight * (1 - ((double)candidate.InFlightTokens / (maxTokens + cost)));
            if (request.PromptBytes > 0 && matched[candidate.Index] > 0)
            {
                score += options.PrefixWeight * Math.Min(1, (double)matched[candidate.Index] * ModelAwareRequest.BlockBytes / request.PromptBytes);
            }

            var adapterLoaded = request.Adapter is not null && (adapterHint & (1UL << candidate.Index)) != 0;
            var freshness = 0.0;
            if (candidate.Metrics is { } snapshot)
            {
                freshness = ModelAwareState.Freshness(state.Time.GetElapsedTime(snapshot.Timestamp, now), options);
                if (freshness > 0)
                {
                    var metrics = snapshot.Metrics;
                    score += freshness * ((options.QueueWeight * (1 - (metrics.Waiting / (maxWaiting + 1)))) + (options.KvCacheWeight * (1 - metrics.KvCacheUsage)));
                    adapterLoaded = adapterLoaded || (request.Adapter is not null && metrics.HasAdapter(request.Adapter));
                }
            }

            // What the metrics do not say counts as half: unknown is neither better nor worse than the middle.
            score += (1 - freshness) * Neutral * (options.QueueWeight + options.KvCacheWeight);

            if (adapterLoaded)
            {
                score += options.AdapterWeight;
            }

            if (score > bestScore)
            {
                bestScore = score;
                best = i;
            }
        }

        return best;
    }

    // matched[bit] = how many leading blocks were last sent to the destinations with that bit.
    internal static void MatchPrefixes(ReadOnlySpan<ulong> blocks, PrefixIndex index, Span<int> matched)
    {
        matched.Clear();
        if (blocks.IsEmpty)
        {
            return;
        }

        var alive = ulong.MaxValue;
        for (var i = 0; i < blocks.Length && alive != 0; i++)
        {
            var before = alive;
            alive &= index.Get(blocks[i]);
            SetCount(matched, before & ~alive, i);
        }

        SetCount(matched, alive, alive == 0 ? 0 : blocks.Length);
    }

    private static void SetCount(Span<int> matched, ulong bits, int value)
    {
        while (bits != 0)
        {
            var bit = BitOperations.TrailingZeroCount(bits);
            matched[bit] = value;
            bits &= bits - 1;
        }
    }

    private void Record(ModelAwareRequest request, int bit)
    {
        var blocks = request.Blocks;
        for (var i = 0; i < blocks.Length; i++)
        {
            state.Prefixes.Add(blocks[i], bit);
        }

        if (request.Adapter is not null)
        {
            state.Prefixes.Add(request.AdapterHash, bit);
        }
    }
}
