using System.Diagnostics;
using ModelRouting.Quotas;
using ModelRouting.Registry;

namespace ModelRouting.Usage;

/// <summary>The kind of OpenAI call a request is, from its path: OpenTelemetry's <c>gen_ai.operation.name</c>.</summary>
public enum GenAIOperation
{
    /// <summary>Any other path on the client surface (pass-through).</summary>
    Other,

    /// <summary><c>/v1/chat/completions</c>: <c>chat</c>.</summary>
    Chat,

    /// <summary><c>/v1/completions</c>: <c>text_completion</c>.</summary>
    TextCompletion,

    /// <summary><c>/v1/embeddings</c>: <c>embeddings</c>.</summary>
    Embeddings,

    /// <summary><c>/v1/responses</c>: <c>responses</c>.</summary>
    Responses,
}

/// <summary>
/// What the gateway decided and saw for one routed request, kept in its features from admission to the end of
/// the response: the endpoint, the estimate, the client key, the attempts, and what the response tap read (time
/// to first byte and token, and the backend's <c>usage</c>). Quotas correct their reservation from it (SPEC §14);
/// metrics and the access log read it (SPEC §15).
/// </summary>
public sealed class GatewayRequest
{
    /// <summary>Gets when the gateway started on the request (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public long Started { get; } = Stopwatch.GetTimestamp();

    /// <summary>Gets or sets the kind of call.</summary>
    public GenAIOperation Operation { get; set; }

    /// <summary>
    /// Gets or sets the model the client asked for, as a metric label (<c>gen_ai.request.model</c>): the registry's
    /// own id or alias string when the name resolves, a fixed label otherwise (never raw client input beyond a
    /// truncated registered name), or null before the body was read.
    /// </summary>
    public string? RequestedModel { get; set; }

    /// <summary>Gets or sets the <c>code</c> of the OpenAI error the gateway itself answered with, or null.</summary>
    public string? ErrorCode { get; set; }

    /// <summary>Gets or sets the <c>type</c> of the OpenAI error the gateway itself answered with, or null.</summary>
    public string? ErrorType { get; set; }

    /// <summary>Gets or sets the endpoint that served (or last tried) the request.</summary>
    public ModelEndpoint? Endpoint { get; set; }

    /// <summary>Gets or sets the id of the client key the request came with, or null on an open gateway.</summary>
    public string? KeyId { get; set; }

    /// <summary>Gets or sets the models the client's key may use (fallbacks included), or null on an open gateway.</summary>
    internal Keys.ModelGrant? Grant { get; set; }

    /// <summary>Gets or sets the prompt-token estimate the decision was made on.</summary>
    public long EstimatedPromptTokens { get; set; }

    /// <summary>Gets or sets the tokens reserved at admission (prompt estimate + output budget), or 0.</summary>
    public long ReservedTokens { get; set; }

    /// <summary>Gets or sets what is left of the request's rate limits after its admission, when limits applied.</summary>
    public RateLimitSnapshot? RateLimits { get; set; }

    /// <summary>Gets or sets the request's hold on its key's and its endpoint's limits, when limits applied.</summary>
    internal QuotaLease? Lease { get; set; }

    /// <summary>Gets or sets the hold on the limits of the fallback endpoint it failed over to, when that has limits.</summary>
    internal QuotaLease? FallbackLease { get; set; }

    /// <summary>Gets or sets how many attempts the request took.</summary>
    public int Attempts { get; set; }

    /// <summary>Gets or sets why a fallback endpoint served it (<c>context</c>, <c>failover</c>), or null.</summary>
    public string? Fallback { get; set; }

    /// <summary>Gets or sets whether the client asked for a stream.</summary>
    public bool Streaming { get; set; }

    /// <summary>Gets or sets whether the gateway asked for the usage chunk the client did not: it is stripped.</summary>
    public bool StripUsageChunk { get; set; }

    /// <summary>Gets or sets when the first byte of the response body was written, or 0.</summary>
    public long FirstByte { get; set; }

    /// <summary>Gets or sets when the first SSE <c>data:</c> event was written (time to first token), or 0.</summary>
    public long FirstToken { get; set; }

    /// <summary>Gets or sets how many SSE data events with output were written (about one token each on vLLM).</summary>
    public int StreamedEvents { get; set; }

    /// <summary>Gets whether the backend reported <c>usage</c>.</summary>
    public bool HasUsage { get; private set; }

    /// <summary>Gets the backend's <c>usage.prompt_tokens</c> (or <c>input_tokens</c>).</summary>
    public long PromptTokens { get; private set; }

    /// <summary>Gets the backend's <c>usage.completion_tokens</c> (or <c>output_tokens</c>).</summary>
    public long CompletionTokens { get; private set; }

    /// <summary>Records the backend's usage.</summary>
    public void SetUsage(long prompt, long completion)
    {
        HasUsage = true;
        PromptTokens = prompt;
        CompletionTokens = completion;
    }

    /// <summary>Forgets what an attempt that was discarded for a retry saw.</summary>
    public void ResetResponse()
    {
        HasUsage = false;
        PromptTokens = CompletionTokens = 0;
        FirstByte = FirstToken = 0;
        StreamedEvents = 0;
    }

    /// <summary>The operation a request path names.</summary>
    public static GenAIOperation OperationOf(string? path)
    {
        if (path is null)
        {
            return GenAIOperation.Other;
        }

        var trimmed = path.AsSpan().TrimEnd('/');
        return trimmed.EndsWith("/chat/completions", StringComparison.OrdinalIgnoreCase) ? GenAIOperation.Chat
            : trimmed.EndsWith("/completions", StringComparison.OrdinalIgnoreCase) ? GenAIOperation.TextCompletion
            : trimmed.EndsWith("/embeddings", StringComparison.OrdinalIgnoreCase) ? GenAIOperation.Embeddings
            : trimmed.EndsWith("/responses", StringComparison.OrdinalIgnoreCase) ? GenAIOperation.Responses
            : GenAIOperation.Other;
    }
}
