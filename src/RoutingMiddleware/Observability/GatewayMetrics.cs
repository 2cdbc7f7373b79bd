using System.Diagnostics;
using System.Diagnostics.Metrics;
using ModelRouting.Configuration;
using ModelRouting.Registry;
using ModelRouting.Usage;

namespace ModelRouting.Observability;

/// <summary>
/// The gateway's instruments (SPEC §15) on one <see cref="Meter"/>, <c>ModelRouting</c>: OpenTelemetry's GenAI
/// semantic conventions for tokens, duration and time to first token, and the gateway's own for requests,
/// attempts, fallbacks, rate-limit refusals, endpoint status and the accuracy of the token estimate.
/// </summary>
/// <remarks>
/// Recording allocates nothing: every label value is a cached string (or a boxed status code made once), tags
/// go in a <see cref="TagList"/> of at most eight, and an instrument nobody listens to costs a flag check.
/// Thread-safe.
/// </remarks>
internal sealed class GatewayMetrics
{
    /// <summary>The meter's name, to pass to <c>AddMeter</c>.</summary>
    public const string MeterName = "ModelRouting";

    // Attribute names: OpenTelemetry GenAI semantic conventions, then the gateway's own.
    public const string OperationName = "gen_ai.operation.name";
    public const string RequestModel = "gen_ai.request.model";
    public const string ResponseModel = "gen_ai.response.model";
    public const string TokenType = "gen_ai.token.type";
    public const string ErrorType = "error.type";
    public const string StatusCode = "http.response.status_code";
    public const string EndpointTag = "gateway.endpoint";
    public const string FallbackReason = "gateway.fallback.reason";
    public const string RateLimitType = "gateway.rate_limit.type";
    public const string EndpointStatusTag = "gateway.endpoint.status";

    // No endpoint: the request was refused (or forwarded unrouted) before one was chosen.
    public const string NoEndpoint = "(none)";

    private static readonly object[] s_statusCodes = [.. Enumerable.Range(0, 600).Select(code => (object)code)];
    private static readonly EndpointStatus[] s_statuses = Enum.GetValues<EndpointStatus>();

    private readonly Histogram<long> _tokenUsage;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _attempts;
    private readonly Counter<long> _fallbacks;
    private readonly Counter<long> _rateLimited;
    private readonly Histogram<double> _estimateRatio;

    public GatewayMetrics(IMeterFactory meterFactory, ModelRegistrySource source)
        : this(meterFactory, () => source.Current.Router.Registry)
    {
    }

    /// <summary>Creates the instruments; <paramref name="registry"/> gives the registry in force, for the status gauge.</summary>
    public GatewayMetrics(IMeterFactory meterFactory, Func<ModelRegistry> registry)
    {
        var meter = meterFactory.Create(MeterName);

        // Bucket boundaries are the ones the GenAI conventions recommend.
        _tokenUsage = meter.CreateHistogram<long>("gen_ai.client.token.usage", "{token}",
            "Tokens used per request, from the backend's usage (input: prompt, output: completion).",
            advice: new() { HistogramBucketBoundaries = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864] });
        _duration = meter.CreateHistogram<double>("gen_ai.server.request.duration", "s",
            "Time from the gateway receiving the request to the end of the response.",
            advice: new() { HistogramBucketBoundaries = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92] });
        _timeToFirstToken = meter.CreateHistogram<double>("gen_ai.server.time_to_first_token", "s",
            "Time from the gateway receiving a streaming request to the first SSE data event written to the client.",
            advice: new() { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0] });
        _requests = meter.CreateCounter<long>("gateway.requests", "{request}",
            "Requests the routing step handled, by endpoint, status code and the gateway's error code.");
        _attempts = meter.CreateCounter<long>("gateway.attempts", "{attempt}",
            "Forwarding attempts made (more than requests when failover retried).");
        _fallbacks = meter.CreateCounter<long>("gateway.fallbacks", "{request}",
            "Requests served by another endpoint than the one asked for: context (too long for it) or failover.");
        _rateLimited = meter.CreateCounter<long>("gateway.rate_limit.refusals", "{request}",
            "Requests refused with 429 rate_limit_exceeded, by limit type (requests or tokens).");
        _estimateRatio = meter.CreateHistogram<double>("gateway.token_estimate.ratio", "1",
            "The gateway's prompt-token estimate divided by the backend's usage.prompt_tokens (1 is exact).",
            advice: new() { HistogramBucketBoundaries = [0.25, 0.5, 0.75, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 4.0] });
        meter.CreateObservableGauge("gateway.endpoint.status", () => ObserveStatuses(registry()), "1",
            "1 for each endpoint's current status (ready, loading, error, disabled), 0 for the others.");
    }

    /// <summary>Records one finished request.</summary>
    public void Record(GatewayRequest request, int statusCode, double seconds)
    {
        var operation = OperationLabel(request.Operation);
        var requestModel = request.RequestedModel ?? ModelLabels.None;
        var endpoint = request.Endpoint;
        var endpointId = endpoint?.Id.Value ?? NoEndpoint;
        var status = s_statusCodes[(uint)statusCode < (uint)s_statusCodes.Length ? statusCode : 0];
        var errorType = request.ErrorCode ?? (statusCode >= 400 ? StatusText(statusCode) : null);

        if (_requests.Enabled)
        {
            var tags = new TagList
            {
                { EndpointTag, endpointId },
                { StatusCode, status },
                { OperationName, operation },
            };
            if (errorType is not null)
            {
                tags.Add(ErrorType, errorType);
            }

            _requests.Add(1, tags);
        }

        if (_duration.Enabled)
        {
            var tags = new TagList
            {
                { OperationName, operation },
                { RequestModel, requestModel },
            };
            if (endpoint is not null)
            {
                tags.Add(ResponseModel, endpoint.UpstreamModel);
            }

            if (errorType is not null)
            {
                tags.Add(ErrorType, errorType);
            }

            _duration.Record(seconds, tags);
            if (request.FirstToken != 0 && request.Streaming)
            {
                _timeToFirstToken.Record(Stopwatch.GetElapsedTime(request.Started, request.FirstToken).TotalSeconds, tags);
            }
        }

        if (endpoint is not null && request.Attempts > 0)
        {
            _attempts.Add(request.Attempts, new KeyValuePair<string, object?>(EndpointTag, endpointId));
        }

        if (request.Fallback is { } fallback && endpoint is not null)
        {
            _fallbacks.Add(1, new KeyValuePair<string, object?>(EndpointTag, endpointId), new KeyValuePair<string, object?>(FallbackReason, FallbackLabel(fallback)));
        }

        if (request.ErrorCode == "rate_limit_exceeded")
        {
            _rateLimited.Add(1, new KeyValuePair<string, object?>(RequestModel, requestModel), new KeyValuePair<string, object?>(RateLimitType, RateLimitLabel(request.ErrorType)));
        }

        if (request.HasUsage && endpoint is not null)
        {
            if (_tokenUsage.Enabled)
            {
                var tags = new TagList
                {
                    { OperationName, operation },
                    { RequestModel, requestModel },
                    { ResponseModel, endpoint.UpstreamModel },
                    { TokenType, "input" },
                };
                _tokenUsage.Record(request.PromptTokens, tags);
                tags[3] = new KeyValuePair<string, object?>(TokenType, "output");
                _tokenUsage.Record(request.CompletionTokens, tags);
            }

            if (request.PromptTokens > 0 && request.EstimatedPromptTokens > 0)
            {
                _estimateRatio.Record((double)request.EstimatedPromptTokens / request.PromptTokens,
                    new KeyValuePair<string, object?>(EndpointTag, endpointId), new KeyValuePair<string, object?>(OperationName, operation));
            }
        }
    }

    /// <summary>The <c>gen_ai.operation.name</c> value of an operation.</summary>
    public static string OperationLabel(GenAIOperation operation) => operation switch
    {
        GenAIOperation.Chat => "chat",
        GenAIOperation.TextCompletion => "text_completion",
        GenAIOperation.Embeddings => "embeddings",
        GenAIOperation.Responses => "responses",
        _ => "other",
    };

    // The fallback reasons the middleware sets, as constants (the value is the gateway's, never the client's).
    private static string FallbackLabel(string fallback) => fallback switch
    {
        "context" => "context",
        "failover" => "failover",
        _ => "other",
    };

    private static string RateLimitLabel(string? type) => type switch
    {
        "requests" => "requests",
        "tokens" => "tokens",
        _ => "other",
    };

    // error.type for a status without a gateway error code (the backend's own error, or YARP's).
    private static string StatusText(int statusCode) => statusCode switch
    {
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        408 => "408",
        413 => "413",
        422 => "422",
        429 => "429",
        499 => "499",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        < 500 => "4xx",
        _ => "5xx",
    };

    private static IEnumerable<Measurement<int>> ObserveStatuses(ModelRegistry registry)
    {
        foreach (var endpoint in registry.AllEndpoints)
        {
            foreach (var status in s_statuses)
            {
                yield return new Measurement<int>(endpoint.Status == status ? 1 : 0,
                    new KeyValuePair<string, object?>(EndpointTag, endpoint.Id.Value),
                    new KeyValuePair<string, object?>(EndpointStatusTag, status.ToWireName()));
            }
        }
    }
}
