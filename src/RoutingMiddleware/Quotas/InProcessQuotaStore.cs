using System.Collections.Concurrent;

namespace ModelRouting.Quotas;

/// <summary>
/// The default <see cref="IQuotaStore"/>: every limit counted in this process (SPEC §14).
/// </summary>
/// <remarks>
/// Not built on <c>System.Threading.RateLimiting</c>, which was the first choice, for two reasons the framework's
/// limiters cannot express: a token reservation that is later corrected to the backend's <c>usage</c> (a window
/// limiter's permits, once acquired, are spent; neither returning part of them nor charging more later is possible),
/// and an admission that holds across several limits at once (key and endpoint, requests, tokens and concurrency:
/// a chained limiter that refuses at the second limit has already spent the first one's window permits). Here one
/// lock covers a whole admission, and each scope keeps two <see cref="SlidingWindow"/>s and an in-flight count.
/// The Redis store does the same in one server-side script.
/// </remarks>
internal sealed class InProcessQuotaStore : IQuotaStore
{
    private readonly ConcurrentDictionary<string, ScopeCounters> _scopes = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly long _start;

    public InProcessQuotaStore(TimeProvider time)
    {
        _time = time;
        _start = time.GetTimestamp();
    }

    private long Now => (long)_time.GetElapsedTime(_start).TotalMilliseconds;

    public ValueTask<QuotaDecision> AdmitAsync(QuotaRequest request, CancellationToken cancellationToken)
    {
        var key = request.Key is { } k ? Counters(k) : null;
        var endpoint = request.Endpoint is { } e ? Counters(e) : null;
        lock (_lock)
        {
            var now = Now;
            var refusal = Check(key, request.Key, request.Tokens, now) ?? Check(endpoint, request.Endpoint, request.Tokens, now);
            if (refusal is { } refused)
            {
                return ValueTask.FromResult(new QuotaDecision(null, refused.Kind, refused.Reason, refused.RetryAfter, Snapshot(key, request.Key, endpoint, request.Endpoint, now)));
            }

            Take(key, request.Key, request.Tokens, now);
            Take(endpoint, request.Endpoint, request.Tokens, now);
            var lease = new QuotaLease(request, now) { KeyState = key, EndpointState = endpoint };
            return ValueTask.FromResult(new QuotaDecision(lease, null, null, TimeSpan.Zero, Snapshot(key, request.Key, endpoint, request.Endpoint, now)));
        }
    }

    public ValueTask CompleteAsync(QuotaLease lease, long usedTokens)
    {
        if (Interlocked.Exchange(ref lease.Completed, 1) != 0)
        {
            return ValueTask.CompletedTask;
        }

        var request = lease.Request;
        var key = request.Key is { } k ? lease.KeyState as ScopeCounters ?? Counters(k) : null;
        var endpoint = request.Endpoint is { } e ? lease.EndpointState as ScopeCounters ?? Counters(e) : null;
        lock (_lock)
        {
            var now = Now;
            Give(key, request.Key, lease, usedTokens, now);
            if (lease.EndpointReleased == 0)
            {
                Give(endpoint, request.Endpoint, lease, usedTokens, now);
            }
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask ReleaseEndpointAsync(QuotaLease lease)
    {
        if (lease.Request.Endpoint is not { } scope)
        {
            return ValueTask.CompletedTask;
        }

        var endpoint = lease.EndpointState as ScopeCounters ?? Counters(scope);
        lock (_lock)
        {
            // Under the lock, as the completion's reading of EndpointReleased: one of the two gives the endpoint back.
            if (lease.Completed == 0 && lease.EndpointReleased == 0)
            {
                lease.EndpointReleased = 1;
                Give(endpoint, scope, lease, 0, Now);
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Counts a request admitted elsewhere (in the shared store) in its scopes' windows, without checking a limit or
    /// holding a concurrency slot: what this process admitted in the last minute, should it have to decide alone.
    /// </summary>
    internal void Count(QuotaRequest request)
    {
        var key = request.Key is { } k ? Counters(k) : null;
        var endpoint = request.Endpoint is { } e ? Counters(e) : null;
        lock (_lock)
        {
            var now = Now;
            key?.Requests.Add(now, 1);
            key?.Tokens.Add(now, request.Tokens);
            endpoint?.Requests.Add(now, 1);
            endpoint?.Tokens.Add(now, request.Tokens);
        }
    }

    private ScopeCounters Counters(QuotaScope scope) => _scopes.GetOrAdd(scope.Id, static _ => new ScopeCounters());

    private static (string Kind, string Reason, TimeSpan RetryAfter)? Check(ScopeCounters? counters, QuotaScope? scope, long tokens, long now)
    {
        if (counters is null || scope is null)
        {
            return null;
        }

        var limits = scope.Limits;
        if (limits.MaxConcurrent is { } concurrent && counters.InFlight >= concurrent)
        {
            return ("requests", $"Rate limit reached for {scope.Id}: {concurrent} concurrent requests.", TimeSpan.FromSeconds(1));
        }

        if (limits.RequestsPerMinute is { } rpm && counters.Requests.Used(now) + 1 > rpm)
        {
            var wait = counters.Requests.UntilAtMost(now, rpm - 1);
            return ("requests", $"Rate limit reached for {scope.Id} on requests per minute: limit {rpm}, used {counters.Requests.Used(now)}.", TimeSpan.FromMilliseconds(wait));
        }

        if (limits.TokensPerMinute is { } tpm)
        {
            if (tokens > tpm)
            {
                return ("tokens", $"Request too large for {scope.Id} on tokens per minute: limit {tpm}, requested {tokens} (prompt estimate + output budget).", SlidingWindow.Length);
            }

            var used = counters.Tokens.Used(now);
            if (used + tokens > tpm)
            {
                var wait = counters.Tokens.UntilAtMost(now, tpm - tokens);
                return ("tokens", $"Rate limit reached for {scope.Id} on tokens per minute: limit {tpm}, used {used}, requested {tokens}.", TimeSpan.FromMilliseconds(wait));
            }
        }

        return null;
    }

    private static void Take(ScopeCounters? counters, QuotaScope? scope, long tokens, long now)
    {
        if (counters is null || scope is null)
        {
            return;
        }

        var limits = scope.Limits;
        if (limits.MaxConcurrent is not null)
        {
            counters.InFlight++;
        }

        // Counted even without a limit of that kind, so a limit added at runtime starts from the real rate.
        counters.Requests.Add(now, 1);
        counters.Tokens.Add(now, tokens);
    }

    private static void Give(ScopeCounters? counters, QuotaScope? scope, QuotaLease lease, long usedTokens, long now)
    {
        if (counters is null || scope is null)
        {
            return;
        }

        if (scope.Limits.MaxConcurrent is not null && counters.InFlight > 0)
        {
            counters.InFlight--;
        }

        counters.Tokens.Correct(lease.ReservedAt, now, usedTokens - lease.Request.Tokens);
    }

    private static RateLimitSnapshot Snapshot(ScopeCounters? key, QuotaScope? keyScope, ScopeCounters? endpoint, QuotaScope? endpointScope, long now)
    {
        long? limitRequests = null, limitTokens = null;
        long remainingRequests = long.MaxValue, remainingTokens = long.MaxValue;
        long resetRequests = 0, resetTokens = 0;
        Tightest(key, keyScope, now, ref limitRequests, ref remainingRequests, ref resetRequests, ref limitTokens, ref remainingTokens, ref resetTokens);
        Tightest(endpoint, endpointScope, now, ref limitRequests, ref remainingRequests, ref resetRequests, ref limitTokens, ref remainingTokens, ref resetTokens);
        return new RateLimitSnapshot(
            limitRequests, limitRequests is null ? 0 : remainingRequests, TimeSpan.FromMilliseconds(resetRequests),
            limitTokens, limitTokens is null ? 0 : remainingTokens, TimeSpan.FromMilliseconds(resetTokens));
    }

    private static void Tightest(
        ScopeCounters? counters, QuotaScope? scope, long now,
        ref long? limitRequests, ref long remainingRequests, ref long resetRequests,
        ref long? limitTokens, ref long remainingTokens, ref long resetTokens)
    {
        if (counters is null || scope is null)
        {
            return;
        }

        if (scope.Limits.RequestsPerMinute is { } rpm)
        {
            var remaining = Math.Max(0, rpm - counters.Requests.Used(now));
            if (remaining < remainingRequests)
            {
                (limitRequests, remainingRequests, resetRequests) = (rpm, remaining, counters.Requests.UntilEmpty(now));
            }
        }

        if (scope.Limits.TokensPerMinute is { } tpm)
        {
            var remaining = Math.Max(0, tpm - counters.Tokens.Used(now));
            if (remaining < remainingTokens)
            {
                (limitTokens, remainingTokens, resetTokens) = (tpm, remaining, counters.Tokens.UntilEmpty(now));
            }
        }
    }

    private sealed class ScopeCounters
    {
        public SlidingWindow Requests { get; } = new();

        public SlidingWindow Tokens { get; } = new();

        public int InFlight { get; set; }
    }
}
