using System.Collections.Frozen;

namespace ModelRouting.Failover;

/// <summary>
/// The failover state of one request, kept in its features while it is forwarded (SPEC §13): whether the
/// attempt under way may be followed by another, and what the response transform saw of a retryable status.
/// </summary>
internal sealed class FailoverAttempt(FrozenSet<int> retryOn)
{
    /// <summary>Gets or sets whether another attempt may follow this one; only then is a retryable status held back.</summary>
    public bool MayRetry { get; set; }

    /// <summary>Gets the retryable status the backend answered this attempt with, its body discarded.</summary>
    public int? RetryableStatus { get; private set; }

    /// <summary>Gets the backend's <c>Retry-After</c> with that status.</summary>
    public TimeSpan? RetryAfter { get; private set; }

    /// <summary>Called by the response transform: returns whether the response is to be discarded for a retry.</summary>
    public bool TryHoldBack(int status, TimeSpan? retryAfter)
    {
        if (!MayRetry || !retryOn.Contains(status))
        {
            return false;
        }

        RetryableStatus = status;
        RetryAfter = retryAfter;
        return true;
    }

    /// <summary>Clears what the last attempt saw.</summary>
    public void Reset()
    {
        RetryableStatus = null;
        RetryAfter = null;
    }
}
