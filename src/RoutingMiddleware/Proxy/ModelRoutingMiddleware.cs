using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;
using ModelRouting.Configuration;
using ModelRouting.Errors;
using ModelRouting.Inspection;
using ModelRouting.Logging;
using ModelRouting.Registry;
using ModelRouting.Routing;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Proxy;

/// <summary>
/// The proxy-pipeline step: reads the OpenAI request body once, routes on its model and token estimate,
/// rewrites the model value by splicing bytes and reassigns the request to the endpoint's cluster through
/// YARP; answers 404 <c>unknown_path</c> for what is not on the client surface (SPEC §12).
/// </summary>
internal sealed partial class ModelRoutingMiddleware(
    RequestDelegate next,
    ModelRegistrySource source,
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
    private static readonly UTF8Encoding s_strictUtf8 = new(false, true);

    public Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        var state = source.Current;
        var path = request.Path.Value;
        if (HttpMethods.IsPost(request.Method) && IsInspected(state, path))
        {
            return RouteAsync(context, state, passThrough: false);
        }

        // The client surface is an allowlist (SPEC §12): a pass-through path, or nothing reaches a backend.
        if (state.Surface.IsPassThrough(path) && !ModelRoutingProxyConfigProvider.IsGenerated(context.GetReverseProxyFeature().Route.Config.RouteId))
        {
            return HttpMethods.IsPost(request.Method) && HasRoutableBody(request) ? RouteAsync(context, state, passThrough: true) : next(context);
        }

        Log.UnknownPath(logger, LogValue.Sanitize(request.Method), LogValue.Sanitize(path));
        return OpenAIError.UnknownPath(request.Method, path).WriteAsync(context);
    }

    private static bool IsInspected(RoutingState state, string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return false;
        }

        return state.InspectedPaths.Contains(path.EndsWith('/') ? path.TrimEnd('/') : path);
    }

    // A pass-through POST is routed on its model when its body is JSON or multipart form data.
    private static bool HasRoutableBody(HttpRequest request)
    {
        var type = request.ContentType;
        return type is not null
            && (type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
                || type.Contains("+json", StringComparison.OrdinalIgnoreCase)
                || type.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase));
    }

    private async Task RouteAsync(HttpContext context, RoutingState state, bool passThrough)
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
        var boundary = passThrough ? MultipartModelField.Boundary(context.Request.ContentType) : null;
        Decision decision;
        ClusterState? cluster;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                decision = boundary is null
                    ? Decide(buffer.AsSpan(0, read.Length), state, passThrough)
                    : DecideMultipart(buffer.AsSpan(0, read.Length), boundary, state);
            }
            catch
            {
                RequestBodyReader.BodyBufferPool.Return(buffer);
                throw;
            }

            if (decision.Error is not null || decision.Endpoint is null)
            {
                break;
            }

            if (proxyState.TryGetCluster(decision.Endpoint.Cluster, out cluster) && TryReassign(context, cluster))
            {
                break;
            }

            // The registry names a cluster YARP has not applied yet, or no longer has: one configuration edit is
            // being applied in two steps. Wait for the routing state that matches the clusters, then decide again.
            if (attempt == 2 || !await source.WaitForChangeAsync(state, TimeSpan.FromSeconds(2), context.RequestAborted))
            {
                RequestBodyReader.BodyBufferPool.Return(buffer);
                await OpenAIError.UpstreamUnavailable(StatusCodes.Status503ServiceUnavailable,
                    $"The cluster '{decision.Endpoint.Cluster}' that serves model `{decision.Endpoint.Id}` is not available.").WriteAsync(context);
                return;
            }

            state = source.Current;
        }

        if (decision.Error is { } error)
        {
            RequestBodyReader.BodyBufferPool.Return(buffer);
            Log.Refused(logger, error.Code, LogValue.Sanitize(error.Message));
            await error.WriteAsync(context);
            return;
        }

        var body = new ForwardedBodyStream(buffer, read.Length, decision.CutStart, decision.CutEnd, decision.Insert);
        context.Response.RegisterForDispose(body);
        var request = context.Request;
        request.Body = body;
        request.ContentLength = body.Length;
        request.Headers.Remove(HeaderNames.TransferEncoding);
        if (decision.Endpoint is not { } endpoint)
        {
            // A pass-through request that names no model: forwarded as received, on its route's cluster.
            await next(context);
            return;
        }

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

        // The two-argument form with a route bound to the target cluster: with the one-argument form, passive
        // health and load balancing act on the route's original cluster (YARP #1750). The clone's id comes from
        // the pair, and its cluster is checked, so a configuration being applied cannot pair a request with a
        // route of another cluster.
        var cloneId = ModelRoutingProxyConfigProvider.CloneRouteId(feature.Route.Config.RouteId, cluster.ClusterId);
        if (!proxyState.TryGetRoute(cloneId, out var route) || route.Config.ClusterId != cluster.ClusterId)
        {
            return false;
        }

        context.ReassignProxyRequest(route, cluster);
        return true;
    }

    // A multipart pass-through request (audio transcriptions and the like): routed on its `model` field,
    // whose value is replaced by the upstream model; no prompt estimate (the payload is media).
    private static Decision DecideMultipart(ReadOnlySpan<byte> body, string boundary, RoutingState state)
    {
        switch (MultipartModelField.Find(body, boundary, out var start, out var end))
        {
            case MultipartModelResult.Duplicate:
                return new(OpenAIError.InvalidRequest("The `model` field appears more than once in the request body.", "model"));
            case MultipartModelResult.Absent or MultipartModelResult.Malformed:
                return Decision.Unchanged;
        }

        string name;
        try
        {
            name = s_strictUtf8.GetString(body[start..end]);
        }
        catch (DecoderFallbackException)
        {
            return new(OpenAIError.InvalidRequest("The `model` field is not valid UTF-8.", "model"));
        }

        var result = state.Router.RouteForContext(name, true, 0);
        if (!result.Succeeded)
        {
            return new(OpenAIError.FromRouting(result.Error, 0, 0, state.RetryAfterSeconds));
        }

        var endpoint = result.Endpoint;
        if (endpoint.Adapters is not null)
        {
            return new(OpenAIError.InvalidRequest($"The model `{endpoint.Id}` applies an adapter stack, which form-data requests cannot carry.", "model"));
        }

        return new(endpoint, 0, false, start, end, Encoding.UTF8.GetBytes(endpoint.UpstreamModel));
    }

    private Decision Decide(ReadOnlySpan<byte> body, RoutingState state, bool passThrough)
    {
        using var text = new PromptText();
        var (counter, cache) = estimator.Pass(state.TokenEstimation);
        var parsed = OpenAIRequestParser.Parse(body, counter, state.TokenEstimation.MediaPartTokens, text, cache);
        if (passThrough && (parsed.Error is BodyError.InvalidJson or BodyError.NotAnObject || (parsed.Error == BodyError.None && !parsed.ModelIsString)))
        {
            // A pass-through body that names no model is not the gateway's to judge: forwarded as received.
            return Decision.Unchanged;
        }

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

    private readonly record struct Decision(
        ModelEndpoint? Endpoint, long PromptTokens, bool IsFallback, int CutStart, int CutEnd, byte[] Insert, OpenAIError? Error = null)
    {
        public Decision(OpenAIError error)
            : this(null, 0, false, 0, 0, [], error)
        {
        }

        /// <summary>Gets the decision to forward the body as received, on the request's own route.</summary>
        public static Decision Unchanged => new(null, 0, false, 0, 0, []);
    }

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Debug, "Routed to endpoint '{Endpoint}' on cluster '{Cluster}' with about {Tokens} prompt tokens.", EventName = "Routed")]
        public static partial void Routed(ILogger logger, string endpoint, string cluster, long tokens);

        [LoggerMessage(11, LogLevel.Information, "Refused a request ({Code}): {Message}", EventName = "Refused")]
        public static partial void Refused(ILogger logger, string code, string message);

        [LoggerMessage(13, LogLevel.Information, "Refused {Method} {Path}: not a path clients may reach.", EventName = "UnknownPath")]
        public static partial void UnknownPath(ILogger logger, string method, string path);

        [LoggerMessage(12, LogLevel.Warning, "The backend for endpoint '{Endpoint}' (cluster '{Cluster}') failed: {Error}", EventName = "UpstreamFailed")]
        public static partial void UpstreamFailed(ILogger logger, string endpoint, string cluster, ForwarderError error);
    }
}
