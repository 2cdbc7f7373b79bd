using System.Collections.Concurrent;

namespace ModelRouting.Quotas;

/// <summary>
/// Usage per client key and per endpoint since the gateway started (SPEC §14): requests, and prompt and
/// completion tokens from the backends' <c>usage</c> (the estimate where a response had none).
/// </summary>
internal sealed class UsageLedger
{
    private readonly ConcurrentDictionary<string, UsageTotals> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, UsageTotals> _endpoints = new(StringComparer.Ordinal);

    public void Record(string? keyId, string endpointId, long promptTokens, long completionTokens, bool fromUsage)
    {
        if (keyId is not null)
        {
            _keys.GetOrAdd(keyId, static _ => new UsageTotals()).Add(promptTokens, completionTokens, fromUsage);
        }

        _endpoints.GetOrAdd(endpointId, static _ => new UsageTotals()).Add(promptTokens, completionTokens, fromUsage);
    }

    public IEnumerable<KeyValuePair<string, UsageTotals>> Keys => _keys.OrderBy(p => p.Key, StringComparer.Ordinal);

    public IEnumerable<KeyValuePair<string, UsageTotals>> Endpoints => _endpoints.OrderBy(p => p.Key, StringComparer.Ordinal);

    public UsageTotals? Key(string id) => _keys.TryGetValue(id, out var totals) ? totals : null;
}

/// <summary>Counters of one key or endpoint.</summary>
internal sealed class UsageTotals
{
    private long _requests;
    private long _prompt;
    private long _completion;
    private long _estimated;

    public long Requests => Volatile.Read(ref _requests);

    public long PromptTokens => Volatile.Read(ref _prompt);

    public long CompletionTokens => Volatile.Read(ref _completion);

    /// <summary>Gets how many requests were counted from the estimate because the backend reported no usage.</summary>
    public long RequestsWithoutUsage => Volatile.Read(ref _estimated);

    public void Add(long prompt, long completion, bool fromUsage)
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Add(ref _prompt, prompt);
        Interlocked.Add(ref _completion, completion);
        if (!fromUsage)
        {
            Interlocked.Increment(ref _estimated);
        }
    }
}

/// <summary>The counts of one key or endpoint, as read at one moment (the admin API writes them in snake_case).</summary>
internal readonly record struct UsageCounts(long Requests, long PromptTokens, long CompletionTokens, long RequestsWithoutUsage)
{
    public static UsageCounts Of(UsageTotals totals) => new(totals.Requests, totals.PromptTokens, totals.CompletionTokens, totals.RequestsWithoutUsage);
}
