using ModelRouting.Configuration;

namespace ModelRouting.Quotas;

/// <summary>The limits of one scope (a key, an endpoint): unset means unlimited (SPEC §14).</summary>
public sealed record RateLimits(int? RequestsPerMinute, long? TokensPerMinute, int? MaxConcurrent)
{
    /// <summary>The limits an options entry sets, or null when it sets none.</summary>
    public static RateLimits? From(RateLimitOptions? options) =>
        options is null || (options.RequestsPerMinute is null && options.TokensPerMinute is null && options.MaxConcurrent is null)
            ? null
            : new RateLimits(options.RequestsPerMinute, options.TokensPerMinute, options.MaxConcurrent);

    /// <summary>Reports each negative or zero limit of <paramref name="options"/> (field, message).</summary>
    public static void Validate(RateLimitOptions? options, Action<string, string> error)
    {
        if (options is null)
        {
            return;
        }

        if (options.RequestsPerMinute is <= 0)
        {
            error("Limits:RequestsPerMinute", $"must be positive, got {options.RequestsPerMinute}");
        }

        if (options.TokensPerMinute is <= 0)
        {
            error("Limits:TokensPerMinute", $"must be positive, got {options.TokensPerMinute}");
        }

        if (options.MaxConcurrent is <= 0)
        {
            error("Limits:MaxConcurrent", $"must be positive, got {options.MaxConcurrent}");
        }
    }
}

/// <summary>One scope whose limits a request counts against: <c>key:&lt;id&gt;</c> or <c>endpoint:&lt;id&gt;</c>.</summary>
public sealed record QuotaScope(string Id, RateLimits Limits);

/// <summary>What one admission asks for: one request and <c>Tokens</c> tokens, against up to two scopes.</summary>
public readonly record struct QuotaRequest(QuotaScope? Key, QuotaScope? Endpoint, long Tokens);

/// <summary>What is left of the tightest limit of each kind, for OpenAI's <c>x-ratelimit-*</c> headers.</summary>
public readonly record struct RateLimitSnapshot(
    long? LimitRequests, long RemainingRequests, TimeSpan ResetRequests,
    long? LimitTokens, long RemainingTokens, TimeSpan ResetTokens)
{
    /// <summary>Of each kind, the snapshot's with less left (a request counted by the scopes of both).</summary>
    public static RateLimitSnapshot Tightest(RateLimitSnapshot a, RateLimitSnapshot b)
    {
        var requests = b.LimitRequests is not null && (a.LimitRequests is null || b.RemainingRequests < a.RemainingRequests) ? b : a;
        var tokens = b.LimitTokens is not null && (a.LimitTokens is null || b.RemainingTokens < a.RemainingTokens) ? b : a;
        return new(requests.LimitRequests, requests.RemainingRequests, requests.ResetRequests, tokens.LimitTokens, tokens.RemainingTokens, tokens.ResetTokens);
    }
}

/// <summary>The answer to an admission.</summary>
public readonly record struct QuotaDecision(QuotaLease? Lease, string? RefusedBy, string? Reason, TimeSpan RetryAfter, RateLimitSnapshot Snapshot)
{
    /// <summary>Gets whether the request was admitted.</summary>
    public bool Admitted => RefusedBy is null;
}

/// <summary>
/// An admitted request's hold on its scopes: one concurrency slot each, and the tokens reserved, which
/// <see cref="IQuotaStore.CompleteAsync"/> corrects to what the request used.
/// </summary>
public sealed class QuotaLease
{
    internal QuotaLease(QuotaRequest request, long reservedAt)
    {
        Request = request;
        ReservedAt = reservedAt;
    }

    /// <summary>Gets what was admitted.</summary>
    public QuotaRequest Request { get; }

    /// <summary>Gets the store's clock reading (ms) when the tokens were reserved, to correct the same window slot.</summary>
    public long ReservedAt { get; }

    /// <summary>Gets whether the lease was taken in the shared store (Redis) rather than in this process.</summary>
    internal bool Shared { get; init; }

    /// <summary>
    /// Gets the store's clock reading (ms) of the endpoint scope's reservation, when it differs from
    /// <see cref="ReservedAt"/> (the shared store admits from each scope's own allotment, see <c>RedisQuotaStore</c>).
    /// </summary>
    internal long EndpointReservedAt { get; init; }

    internal int Completed;

    // What the store that admitted it keeps of its scopes, so that its completion need not look them up again.
    internal object? KeyState;
    internal object? EndpointState;

    // Set once the endpoint scope has been released (IQuotaStore.ReleaseEndpointAsync): the completion leaves it alone.
    internal int EndpointReleased;
}

/// <summary>
/// Where limits are counted (SPEC §14, §16): the algorithm and its storage behind one interface. The in-process
/// store is the default; a shared store (Redis, for replicas) is a second implementation.
/// </summary>
public interface IQuotaStore
{
    /// <summary>
    /// Admits a request against every scope it names at once (all or nothing): one request per minute, its tokens
    /// per minute and one concurrent slot, or refuses it saying which limit and when to retry.
    /// </summary>
    ValueTask<QuotaDecision> AdmitAsync(QuotaRequest request, CancellationToken cancellationToken);

    /// <summary>Ends an admitted request: frees its slot and corrects its reserved tokens to <paramref name="usedTokens"/>.</summary>
    ValueTask CompleteAsync(QuotaLease lease, long usedTokens);

    /// <summary>
    /// Lets go of an admitted request's endpoint scope before it ends, as of a request that failed there: frees its
    /// concurrency slot and gives back all its reserved tokens (the request failed over to another endpoint, SPEC §13).
    /// The key scope stays held until <see cref="CompleteAsync"/>, which then corrects the key alone. A store that does
    /// not implement it keeps the endpoint held until the completion.
    /// </summary>
    ValueTask ReleaseEndpointAsync(QuotaLease lease) => ValueTask.CompletedTask;
}
