using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using ModelRouting.Usage;

namespace ModelRouting.Observability;

/// <summary>
/// One <see cref="Activity"/> per routed request (SPEC §15) on the <c>ModelRouting</c> source, with the routing
/// decision as attributes. YARP 2.3 starts its own <c>proxy.forwarder</c> activity around the whole proxy pipeline
/// (ProxyPipelineInitializerMiddleware), before this step runs, so that one is our parent; ours is current while
/// the request is forwarded, so each attempt's HTTP call (<c>System.Net.Http</c>) is our child and the W3C
/// <c>traceparent</c> the backend receives carries the trace. Nothing is created unless a listener
/// (OpenTelemetry's tracer, a test) samples the source.
/// </summary>
internal static class GatewayTracing
{
    /// <summary>The activity source's name, to pass to <c>AddSource</c>.</summary>
    public const string SourceName = "ModelRouting";

    /// <summary>The activity's name.</summary>
    public const string ActivityName = "gateway.route";

    private static readonly ActivitySource s_source = new(SourceName);

    /// <summary>Starts the request's activity, or returns null when no listener wants it.</summary>
    public static Activity? Start(GatewayRequest request)
    {
        if (!s_source.HasListeners())
        {
            return null;
        }

        var activity = s_source.StartActivity(ActivityName, ActivityKind.Internal);
        activity?.SetTag(GatewayMetrics.OperationName, GatewayMetrics.OperationLabel(request.Operation));
        return activity;
    }

    /// <summary>Records the decision and the outcome on the activity and stops it.</summary>
    public static void Stop(Activity? activity, HttpContext context, GatewayRequest request)
    {
        if (activity is null)
        {
            return;
        }

        if (activity.IsAllDataRequested)
        {
            activity.SetTag(GatewayMetrics.RequestModel, request.RequestedModel ?? ModelLabels.None);
            if (request.Endpoint is { } endpoint)
            {
                activity.DisplayName = GatewayMetrics.OperationLabel(request.Operation) + " " + endpoint.Id.Value;
                activity.SetTag(GatewayMetrics.EndpointTag, endpoint.Id.Value);
                activity.SetTag("gateway.cluster", endpoint.Cluster);
                activity.SetTag(GatewayMetrics.ResponseModel, endpoint.UpstreamModel);
                activity.SetTag("gateway.estimated_prompt_tokens", request.EstimatedPromptTokens);
                activity.SetTag("gateway.attempts", request.Attempts);
                activity.SetTag("gen_ai.request.stream", request.Streaming);
                if (request.Fallback is { } fallback)
                {
                    activity.SetTag(GatewayMetrics.FallbackReason, fallback);
                }
            }

            if (request.KeyId is { } keyId)
            {
                activity.SetTag("gateway.key_id", keyId);
            }

            if (request.HasUsage)
            {
                activity.SetTag("gen_ai.usage.input_tokens", request.PromptTokens);
                activity.SetTag("gen_ai.usage.output_tokens", request.CompletionTokens);
            }

            var status = context.Response.StatusCode;
            activity.SetTag(GatewayMetrics.StatusCode, status);
            if (request.ErrorCode is { } code)
            {
                activity.SetTag(GatewayMetrics.ErrorType, code);
            }

            if (status >= 500)
            {
                activity.SetStatus(ActivityStatusCode.Error, request.ErrorCode);
            }
        }

        activity.Stop();
    }
}
