using Microsoft.Extensions.Logging;

namespace ModelRouting.Observability;

/// <summary>
/// The access log (SPEC §15): one structured line per request the routing step handled, in the category
/// <c>ModelRouting.AccessLog</c> at Information. Every field is a named value, so the JSON console formatter
/// (<c>Logging:Console:FormatterName=json</c>) or any structured sink receives them as fields. No field carries
/// raw client input: the model is its metric label, the key its configured id, never the secret.
/// </summary>
internal static partial class AccessLog
{
    /// <summary>The logger category.</summary>
    public const string Category = "ModelRouting.AccessLog";

    [LoggerMessage(140, LogLevel.Information,
        "{Operation} model={Model} endpoint={Endpoint} key={KeyId} status={Status} error={ErrorCode} estimate={EstimatedPromptTokens} "
        + "prompt_tokens={PromptTokens} completion_tokens={CompletionTokens} attempts={Attempts} fallback={Fallback} duration_ms={DurationMs} ttfb_ms={TimeToFirstByteMs} ttft_ms={TimeToFirstTokenMs}",
        EventName = "Request")]
    public static partial void Request(
        ILogger logger,
        string operation,
        string model,
        string endpoint,
        string? keyId,
        int status,
        string? errorCode,
        long estimatedPromptTokens,
        long? promptTokens,
        long? completionTokens,
        int attempts,
        string? fallback,
        double durationMs,
        double? timeToFirstByteMs,
        double? timeToFirstTokenMs);
}
