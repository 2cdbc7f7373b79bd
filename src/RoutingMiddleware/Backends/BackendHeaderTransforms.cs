using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace ModelRouting.Backends;

/// <summary>
/// YARP transforms added to every route, the generated per-cluster clones included (SPEC §12):
/// <list type="bullet">
/// <item>the client's <c>Authorization</c> and <c>api-key</c> headers are removed from the proxied request, and the
/// target cluster's backend key (<c>ModelRouting:Backends:&lt;cluster&gt;:ApiKey</c>) is sent as
/// <c>Authorization: Bearer …</c>. The cluster is read from the proxy feature, which follows
/// <c>ReassignProxyRequest</c>; the route's cluster would not;</item>
/// <item><c>x-gateway-*</c> response headers are the gateway's alone: YARP appends a backend's copies to the values
/// the gateway set before forwarding, so the gateway's values are captured when the request is sent and every
/// <c>x-gateway-*</c> header the backend sent is dropped (from the trailers too).</item>
/// </list>
/// The gateway's <c>x-gateway-*</c> headers must therefore be set before the request is forwarded.
/// </summary>
internal sealed class BackendHeaderTransforms(BackendCredentials credentials) : ITransformProvider
{
    /// <summary>The prefix of the response headers only the gateway sets.</summary>
    public const string GatewayHeaderPrefix = "x-gateway-";

    /// <summary>The client credential header Azure OpenAI clients send.</summary>
    public const string ApiKeyHeader = "api-key";

    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        context.AddRequestTransform(TransformRequest);
        context.AddResponseTransform(TransformResponse);
        context.AddResponseTrailersTransform(TransformTrailers);
    }

    private ValueTask TransformRequest(RequestTransformContext context)
    {
        var headers = context.ProxyRequest.Headers;
        headers.Remove(HeaderNames.Authorization);
        headers.Remove(ApiKeyHeader);
        if (context.HttpContext.Features.Get<IReverseProxyFeature>()?.Cluster?.Config.ClusterId is { } clusterId
            && credentials.TryGetAuthorization(clusterId, out var authorization))
        {
            headers.TryAddWithoutValidation(HeaderNames.Authorization, authorization);
        }

        GatewayHeaders.Capture(context.HttpContext);
        return default;
    }

    private static ValueTask TransformResponse(ResponseTransformContext context)
    {
        var proxyResponse = context.ProxyResponse;
        var response = context.HttpContext.Response;
        if (proxyResponse is null || !context.HeadersCopied || response.HasStarted
            || (!HasGatewayHeader(proxyResponse.Headers.NonValidated) && !HasGatewayHeader(proxyResponse.Content.Headers.NonValidated)))
        {
            return default;
        }

        RemoveGatewayHeaders(response.Headers);
        context.HttpContext.Features.Get<GatewayHeaders>()?.Restore(response.Headers);
        return default;
    }

    private static ValueTask TransformTrailers(ResponseTrailersTransformContext context)
    {
        if (context.HeadersCopied
            && HasGatewayHeader(context.ProxyResponse.TrailingHeaders.NonValidated)
            && context.HttpContext.Features.Get<IHttpResponseTrailersFeature>()?.Trailers is { IsReadOnly: false } trailers)
        {
            RemoveGatewayHeaders(trailers);
        }

        return default;
    }

    private static bool HasGatewayHeader(System.Net.Http.Headers.HttpHeadersNonValidated headers)
    {
        foreach (var header in headers)
        {
            if (IsGatewayHeader(header.Key))
            {
                return true;
            }
        }

        return false;
    }

    private static void RemoveGatewayHeaders(IHeaderDictionary headers)
    {
        List<string>? names = null;
        foreach (var header in headers)
        {
            if (IsGatewayHeader(header.Key))
            {
                (names ??= []).Add(header.Key);
            }
        }

        foreach (var name in names ?? [])
        {
            headers.Remove(name);
        }
    }

    private static bool IsGatewayHeader(string name) => name.StartsWith(GatewayHeaderPrefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>The gateway's own <c>x-gateway-*</c> response headers, as set when the request was forwarded.</summary>
    private sealed class GatewayHeaders
    {
        private readonly List<KeyValuePair<string, StringValues>> _headers = [];

        public static void Capture(HttpContext context)
        {
            GatewayHeaders? captured = null;
            foreach (var header in context.Response.Headers)
            {
                if (IsGatewayHeader(header.Key))
                {
                    (captured ??= new())._headers.Add(header);
                }
            }

            // Set (or cleared) per attempt: a retried request captures what the gateway set for that attempt.
            context.Features.Set(captured);
        }

        public void Restore(IHeaderDictionary headers)
        {
            foreach (var (name, value) in _headers)
            {
                headers[name] = value;
            }
        }
    }
}
