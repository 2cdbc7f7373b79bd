using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;
using ModelRouting.Adapters;
using ModelRouting.Configuration;
using ModelRouting.Errors;
using ModelRouting.Inspection;
using ModelRouting.Registry;
using ModelRouting.Routing;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Proxy;

/// <summary>
/// The proxy-pipeline step: reads the OpenAI request body once, routes on its model and token estimate,
/// rewrites the model value by splicing bytes and reassigns the request to the endpoint's cluster through
/// YARP; answers the gateway's own routes (<c>/v1/models</c>, <c>/healthz</c>, <c>/readyz</c>).
/// </summary>
internal sealed partial class ModelRoutingMiddleware(
    RequestDelegate next,
    ModelRegistrySource source,
    ModelRoutingProxyConfigProvider proxyConfig,
    IProxyStateLookup proxyState,
    PromptTokenEstimator estimator,
    ILogger<ModelRoutingMiddleware> logger)
{
    public const string EndpointHeader = "x-gateway-endpoint";
    public const string EstimatedTokensHeader = "x-gateway-estimated-tokens";
    public const string FallbackHeader = "x-gateway-fallback";

    private const int StackModelChars = 256;
    private static readonly ConcurrentDictionary<string, byte[]> s_encodedModels = new(StringComparer.Ordinal);
    private static readonly ConditionalWeakTable<ModelEndpoint, byte[]> s_mergedAdapters = [];
    private static readonly JsonSerializerOptions s_json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public Task InvokeAsync(HttpContext context)
    {
        var routeId = context.GetReverseProxyFeature().Route.Config.RouteId;
        if (ModelRoutingProxyConfigProvider.IsGenerated(routeId))
        {
            return AnswerOwnRouteAsync(context, routeId);
        }

        var request = context.Request;
        var state = source.Current;
        if (!HttpMethods.IsPost(request.Method) || !IsInspected(state, request.Path))
        {
            return next(context);
        }

        return RouteAsync(context, state);
    }

    private static bool IsInspected(RoutingState state, PathString path)
    {
        var value = path.Value;
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }

        return state.InspectedPaths.Contains(value.EndsWith('/') ? value.TrimEnd('/') : value);
    }

    private async Task RouteAsync(HttpContext context, RoutingState state)
    {
        var read = await RequestBodyReader.ReadAsync(context, state.MaxRequestBodyBytes);
        switch (read.Failure)
        {
            case BodyReadFailure.TooLarge:
                await OpenAIError.RequestTooLarge(state.MaxRequestBodyBytes).WriteAsync(context);
                return;
            case BodyReadFailure.UnsupportedEncoding:
                await (OpenAIError.InvalidRequest(read.Detail!) with { StatusCode = StatusCodes.Status415UnsupportedMediaType }).WriteAsync(context);
                return;
            case BodyReadFailure.Malformed:
                await OpenAIError.InvalidRequest("The request body could not be read: " + read.Detail).WriteAsync(context);
                return;
        }

        var buffer = read.Buffer!;
        Decision decision;
        try
        {
            decision = Decide(buffer.AsSpan(0, read.Length), state);
        }
        catch
        {
            RequestBodyReader.BodyBufferPool.Return(buffer);
            throw;
        }

        if (decision.Error is { } error)
        {
            RequestBodyReader.BodyBufferPool.Return(buffer);
            Log.Refused(logger, error.Code, error.Message);
            await error.WriteAsync(context);
            return;
        }

        var endpoint = decision.Endpoint!;
        if (!proxyState.TryGetCluster(endpoint.Cluster, out var cluster) || !TryReassign(context, cluster))
        {
            RequestBodyReader.BodyBufferPool.Return(buffer);
            await OpenAIError.UpstreamUnavailable(StatusCodes.Status503ServiceUnavailable,
                $"The cluster '{endpoint.Cluster}' that serves model `{endpoint.Id}` is not available.").WriteAsync(context);
            return;
        }

        if (!AdapterPlacement.TryNarrow(context, endpoint, source.Conditions))
        {
            RequestBodyReader.BodyBufferPool.Return(buffer);
            await AdapterPlacement.NotPlaced(endpoint, state.RetryAfterSeconds).WriteAsync(context);
            return;
        }

        var body = new ForwardedBodyStream(buffer, read.Length, decision.CutStart, decision.CutEnd, decision.Insert);
        context.Response.RegisterForDispose(body);
        var request = context.Request;
        request.Body = body;
        request.ContentLength = body.Length;
        request.Headers.Remove(HeaderNames.TransferEncoding);

        var headers = context.Response.Headers;
        headers[EndpointHeader] = endpoint.Id.Value;
        headers[EstimatedTokensHeader] = decision.PromptTokens.ToString(CultureInfo.InvariantCulture);
        if (decision.IsFallback)
        {
            headers[FallbackHeader] = "context";
        }

        Log.Routed(logger, endpoint.Id.Value, endpoint.Cluster, decision.PromptTokens);
        await next(context);
        await MapForwarderErrorAsync(context, endpoint);
    }

    private bool TryReassign(HttpContext context, ClusterState cluster)
    {
        var feature = context.GetReverseProxyFeature();
        if (feature.Cluster.Config.ClusterId == cluster.ClusterId)
        {
            return true;
        }

        // The two-argument form with a route bound to the target cluster: with the one-argument form,
        // passive health and load balancing act on the route's original cluster (YARP #1750).
        if (!proxyConfig.Current.TryGetCloneRouteId(feature.Route.Config.RouteId, cluster.ClusterId, out var cloneId)
            || !proxyState.TryGetRoute(cloneId!, out var route))
        {
            return false;
        }

        context.ReassignProxyRequest(route, cluster);
        return true;
    }

    private Decision Decide(ReadOnlySpan<byte> body, RoutingState state)
    {
        using var text = new PromptText();
        var (counter, cache) = estimator.Pass(state.TokenEstimation);
        var parsed = OpenAIRequestParser.Parse(body, counter, state.TokenEstimation.MediaPartTokens, text, cache);
        switch (parsed.Error)
        {
            case BodyError.InvalidJson:
                return new(OpenAIError.InvalidRequest("The request body is not valid JSON: " + parsed.ErrorDetail));
            case BodyError.NotAnObject:
                return new(OpenAIError.InvalidRequest("The request body must be a JSON object."));
            case BodyError.ModelNotString:
                return new(OpenAIError.InvalidRequest("The `model` parameter must be a string.", "model"));
            case BodyError.DuplicateModel:
                return new(OpenAIError.InvalidRequest("The `model` parameter appears more than once in the request body.", "model"));
        }

        char[]? rented = null;
        Span<char> name = parsed.ModelIsString
            ? (parsed.ModelTokenEnd - parsed.ModelTokenStart <= StackModelChars
                ? stackalloc char[StackModelChars]
                : rented = ArrayPool<char>.Shared.Rent(parsed.ModelTokenEnd - parsed.ModelTokenStart))
            : [];
        try
        {
            if (parsed.ModelIsString)
            {
                name = name[..OpenAIRequestParser.GetModelName(body, parsed, name)];
            }

            var router = state.Router;
            var prompt = parsed.PromptTokens;
            var result = router.RouteForContext(name, parsed.ModelIsString, prompt + parsed.OutputTokens);
            // The endpoint the client named (or the default): the routed one unless a fallback or an error came of it.
            var asked = result.Succeeded && !result.IsContextFallback ? result.Endpoint
                : parsed.ModelIsString ? router.Registry.Resolve(name) : router.Registry.DefaultEndpoint;
            if (PromptTokenEstimator.ShouldCountExactly(state.TokenEstimation, result, asked, prompt + parsed.OutputTokens))
            {
                prompt = estimator.CountExactly(state.TokenEstimation, body, text.Ranges, parsed, result.Endpoint ?? asked);
                result = router.RouteForContext(name, parsed.ModelIsString, prompt + parsed.OutputTokens);
            }

            if (!result.Succeeded)
            {
                return new(OpenAIError.FromRouting(result.Error, prompt, parsed.OutputTokens, state.RetryAfterSeconds));
            }

            var endpoint = result.Endpoint;
            if (endpoint.Adapters is not null && parsed.HasMergedAdapters)
            {
                return new(OpenAIError.InvalidRequest(
                    $"The model `{endpoint.Id}` applies an adapter stack; the gateway sets `merged_adapters` for it, so the request must not.", "merged_adapters"));
            }

            // One splice: the model value is replaced (or "model":… inserted as the first member), and for
            // an adapter stack the merged_adapters member follows it.
            var upstream = EncodedModel(endpoint.UpstreamModel);
            var stack = endpoint.Adapters is null ? [] : s_mergedAdapters.GetValue(endpoint, MergedAdaptersMember);
            int cutStart, cutEnd;
            byte[] insert;
            if (!parsed.HasModelToken)
            {
                cutStart = cutEnd = parsed.ObjectStart + 1;
                insert = Concat("\"model\":"u8, upstream, stack, parsed.IsEmptyObject ? [] : ","u8);
            }
            else if (parsed.ModelIsString && !parsed.ModelIsEscaped && body[parsed.ModelTokenStart..parsed.ModelTokenEnd].SequenceEqual(upstream))
            {
                cutStart = cutEnd = parsed.ModelTokenEnd;
                insert = stack;
            }
            else
            {
                cutStart = parsed.ModelTokenStart;
                cutEnd = parsed.ModelTokenEnd;
                insert = stack.Length == 0 ? upstream : Concat(upstream, stack, [], []);
            }

            return new(endpoint, prompt, result.IsContextFallback, cutStart, cutEnd, insert);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    private static byte[] EncodedModel(string upstream)
    {
        if (s_encodedModels.TryGetValue(upstream, out var encoded))
        {
            return encoded;
        }

        if (s_encodedModels.Count > 10_000)
        {
            s_encodedModels.Clear();
        }

        var json = JsonEncodedText.Encode(upstream, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping);
        return s_encodedModels[upstream] = Concat("\""u8, json.EncodedUtf8Bytes, "\""u8, []);
    }

    private static byte[] Concat(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, ReadOnlySpan<byte> d)
    {
        var result = new byte[a.Length + b.Length + c.Length + d.Length];
        a.CopyTo(result);
        b.CopyTo(result.AsSpan(a.Length));
        c.CopyTo(result.AsSpan(a.Length + b.Length));
        d.CopyTo(result.AsSpan(a.Length + b.Length + c.Length));
        return result;
    }

    // ,"merged_adapters":{"ids":[…],"weights":[…],"merge_strategy":"linear"} (LoRAX's shape, SPEC §7).
    private static byte[] MergedAdaptersMember(ModelEndpoint endpoint)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        buffer.Write(",\"merged_adapters\":"u8);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("ids");
            foreach (var adapter in endpoint.Adapters!.Adapters)
            {
                writer.WriteStringValue(adapter.Name);
            }

            writer.WriteEndArray();
            writer.WriteStartArray("weights");
            foreach (var adapter in endpoint.Adapters.Adapters)
            {
                writer.WriteNumberValue(adapter.Weight);
            }

            writer.WriteEndArray();
            writer.WriteString("merge_strategy", "linear");
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private async Task MapForwarderErrorAsync(HttpContext context, ModelEndpoint endpoint)
    {
        var error = context.GetForwarderErrorFeature();
        if (error is null || context.Response.HasStarted || error.Error == ForwarderError.RequestCanceled || context.RequestAborted.IsCancellationRequested)
        {
            return;
        }

        Log.UpstreamFailed(logger, endpoint.Id.Value, endpoint.Cluster, error.Error);
        var status = context.Response.StatusCode is StatusCodes.Status503ServiceUnavailable or StatusCodes.Status504GatewayTimeout
            ? context.Response.StatusCode
            : StatusCodes.Status502BadGateway;
        var detail = error.Error switch
        {
            ForwarderError.NoAvailableDestinations => $"No backend of cluster '{endpoint.Cluster}' is available for model `{endpoint.Id}`.",
            ForwarderError.RequestTimedOut => $"The backend for model `{endpoint.Id}` did not answer in time.",
            _ => $"The backend for model `{endpoint.Id}` could not be reached ({error.Error}).",
        };
        await OpenAIError.UpstreamUnavailable(status, detail).WriteAsync(context);
    }

    private Task AnswerOwnRouteAsync(HttpContext context, string routeId)
    {
        var router = source.Current.Router;
        switch (routeId)
        {
            case ModelRoutingProxyConfigProvider.ModelsRouteId:
                return WriteJsonAsync(context, StatusCodes.Status200OK, new ModelsListResponse(router.ModelsList()));
            case ModelRoutingProxyConfigProvider.ModelRouteId:
                var path = context.Request.Path.Value ?? "";
                var id = Uri.UnescapeDataString(path["/v1/models/".Length..]);
                var endpoint = router.Registry.Resolve(id);
                if (endpoint is null)
                {
                    return OpenAIError.ModelNotFound(id).WriteAsync(context);
                }

                if (!endpoint.Status.IsAvailable())
                {
                    var notReady = new RoutingError(RoutingErrorKind.ModelNotReady, endpoint.Id.Value, Status: endpoint.Status.ToWireName());
                    return OpenAIError.FromRouting(notReady, 0, 0, source.Current.RetryAfterSeconds).WriteAsync(context);
                }

                return WriteJsonAsync(context, StatusCodes.Status200OK, router.ToListEntry(endpoint));
            case ModelRoutingProxyConfigProvider.HealthRouteId:
                return WriteJsonAsync(context, StatusCodes.Status200OK, new HealthResponse("ok", null));
            case ModelRoutingProxyConfigProvider.ReadyRouteId:
                var ready = router.Registry.AvailableEndpoints.Any();
                return WriteJsonAsync(context, ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable,
                    new HealthResponse(ready ? "ready" : "not_ready", ready ? null : "no endpoint is Ready"));
            default:
                // A generated clone route matched by its own path: it is internal, not an entry point.
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
        }
    }

    private static Task WriteJsonAsync<T>(HttpContext context, int status, T value)
    {
        context.Response.StatusCode = status;
        if (HttpMethods.IsHead(context.Request.Method))
        {
            context.Response.ContentType = "application/json";
            return Task.CompletedTask;
        }

        return context.Response.WriteAsJsonAsync(value, s_json, context.RequestAborted);
    }

    private readonly record struct Decision(
        ModelEndpoint? Endpoint, long PromptTokens, bool IsFallback, int CutStart, int CutEnd, byte[] Insert, OpenAIError? Error = null)
    {
        public Decision(OpenAIError error)
            : this(null, 0, false, 0, 0, [], error)
        {
        }
    }

    private sealed record ModelsListResponse(
        [property: System.Text.Json.Serialization.JsonPropertyName("data")] IReadOnlyList<ModelListEntry> Data)
    {
        [System.Text.Json.Serialization.JsonPropertyName("object")]
        [System.Text.Json.Serialization.JsonPropertyOrder(-1)]
#pragma warning disable CA1822 // an instance member so System.Text.Json serializes it
        public string ObjectType => "list";
#pragma warning restore CA1822
    }

    private sealed record HealthResponse(
        [property: System.Text.Json.Serialization.JsonPropertyName("status")] string Status,
        [property: System.Text.Json.Serialization.JsonPropertyName("reason")] string? Reason);

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Debug, "Routed to endpoint '{Endpoint}' on cluster '{Cluster}' with about {Tokens} prompt tokens.", EventName = "Routed")]
        public static partial void Routed(ILogger logger, string endpoint, string cluster, long tokens);

        [LoggerMessage(11, LogLevel.Information, "Refused a request ({Code}): {Message}", EventName = "Refused")]
        public static partial void Refused(ILogger logger, string code, string message);

        [LoggerMessage(12, LogLevel.Warning, "The backend for endpoint '{Endpoint}' (cluster '{Cluster}') failed: {Error}", EventName = "UpstreamFailed")]
        public static partial void UpstreamFailed(ILogger logger, string endpoint, string cluster, ForwarderError error);
    }
}
