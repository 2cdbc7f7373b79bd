using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ModelRouting.Usage;

namespace ModelRouting.Observability;

/// <summary>
/// Reports each request the routing step handled (SPEC §15): the metrics, the access-log line and the status
/// page's rolling window. Runs on the request's thread at its end; allocates nothing unless the access log is
/// written.
/// </summary>
internal sealed class ObservabilityListener(GatewayMetrics metrics, StatusWindow window, ILoggerFactory loggers, ObservabilityOptions options)
    : IGatewayRequestListener
{
    // A request the client gave up on before any response: nginx's convention.
    private const int ClientClosedRequest = 499;

    private readonly ILogger _accessLog = loggers.CreateLogger(AccessLog.Category);
    private readonly bool _writeAccessLog = options.AccessLog;

    public void OnRequestCompleted(HttpContext context, GatewayRequest request)
    {
        var end = Stopwatch.GetTimestamp();
        var response = context.Response;
        var status = !response.HasStarted && context.RequestAborted.IsCancellationRequested ? ClientClosedRequest : response.StatusCode;
        var elapsed = Stopwatch.GetElapsedTime(request.Started, end);
        metrics.Record(request, status, elapsed.TotalSeconds);

        var firstToken = request.FirstToken != 0 && request.Streaming ? Stopwatch.GetElapsedTime(request.Started, request.FirstToken).TotalMilliseconds : -1;
        if (request.Endpoint is { } endpoint)
        {
            var tokens = request.HasUsage ? request.PromptTokens + request.CompletionTokens : 0;
            window.Record(endpoint.Id.Value, elapsed.TotalMilliseconds, firstToken, tokens, status >= 400);
        }

        if (_writeAccessLog && _accessLog.IsEnabled(LogLevel.Information))
        {
            AccessLog.Request(
                _accessLog,
                GatewayMetrics.OperationLabel(request.Operation),
                request.RequestedModel ?? ModelLabels.None,
                request.Endpoint?.Id.Value ?? GatewayMetrics.NoEndpoint,
                request.KeyId,
                status,
                request.ErrorCode,
                request.EstimatedPromptTokens,
                request.HasUsage ? request.PromptTokens : null,
                request.HasUsage ? request.CompletionTokens : null,
                request.Attempts,
                request.Fallback,
                Math.Round(elapsed.TotalMilliseconds, 3),
                request.FirstByte != 0 ? Math.Round(Stopwatch.GetElapsedTime(request.Started, request.FirstByte).TotalMilliseconds, 3) : null,
                firstToken >= 0 ? Math.Round(firstToken, 3) : null);
        }
    }
}
