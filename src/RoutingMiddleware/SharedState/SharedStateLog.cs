using Microsoft.Extensions.Logging;

namespace ModelRouting.SharedState;

/// <summary>Log messages of the shared state (event ids 150-159).</summary>
internal static partial class SharedStateLog
{
    [LoggerMessage(150, LogLevel.Information, "Shared state: connected to Redis at {Endpoint}.", EventName = "RedisConnected")]
    public static partial void Connected(ILogger logger, string endpoint);

    [LoggerMessage(151, LogLevel.Warning, "Shared state: Redis is unavailable ({Reason}); requests keep flowing on the last registry, admin writes answer 503, and rate limits fall back until it answers.", EventName = "RedisUnavailable")]
    public static partial void Unavailable(ILogger logger, string reason);

    [LoggerMessage(152, LogLevel.Information, "Shared state: Redis answers again.", EventName = "RedisRestored")]
    public static partial void Restored(ILogger logger);

    [LoggerMessage(153, LogLevel.Error, "Shared state: the overlay document in Redis (version {Version}) is refused and the last good one stays in force: {Reason}", EventName = "SharedOverlayRefused")]
    public static partial void OverlayRefused(ILogger logger, long version, string reason);

    [LoggerMessage(154, LogLevel.Information, "Shared state: overlay version {Version} from Redis is in force.", EventName = "SharedOverlayApplied")]
    public static partial void OverlayApplied(ILogger logger, long version);

    [LoggerMessage(155, LogLevel.Information, "Shared state: Redis held no overlay; this replica's ({Endpoints} endpoints, {Keys} keys) is now the shared one.", EventName = "SharedOverlaySeeded")]
    public static partial void OverlaySeeded(ILogger logger, int endpoints, int keys);

    [LoggerMessage(156, LogLevel.Warning, "Rate limits: Redis is unavailable; {Count} admissions in the last {Seconds} s were decided {Decision}.", EventName = "QuotaFallback")]
    public static partial void QuotaFallback(ILogger logger, long count, int seconds, string decision);

    [LoggerMessage(157, LogLevel.Warning, "Shared state: the overlay applied from Redis was not written to the local state file (last-known-good): {Reason}", EventName = "LocalCopyNotSaved")]
    public static partial void LocalCopyNotSaved(ILogger logger, string reason);

    [LoggerMessage(158, LogLevel.Warning, "Usage: this replica's totals could not be {Action} Redis: {Reason}", EventName = "SharedUsageFailed")]
    public static partial void UsageFailed(ILogger logger, string action, string reason);
}
