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
/// <item><c>x-gateway-*</c> response headers are the gateway's alone, and so are <c>x-ratelimit-*</c> when the gateway
/// wrote them (the request had limits, SPEC §14): YARP appends a backend's values to those the gateway set before
/// forwarding, so of each such header the backend sent, the values the backend added are dropped (all of an
/// <c>x-gateway-*</c> header, from the trailers too). A backend's <c>x-ratelimit-*</c> headers on a request the gateway
/// did not limit pass through.</item>
/// </list>
/// The gateway's own headers must therefore be set before the request is forwarded.
/// </summary>
internal sealed class BackendHeaderTransforms(BackendCredentials credentials) : ITransformProvider
{
    /// <summary>The prefix of the response headers only the gateway sets.</summary>
    public const string GatewayHeaderPrefix = "x-gateway-";

    /// <summary>The client credential header Azure OpenAI clients send.</summary>
    public const string ApiKeyHeader = "api-key";

    // OpenAI's rate-limit headers (SPEC §14): the gateway's alone when it wrote them.
    private const string RateLimitHeaderPrefix = "x-ratelimit-";

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

        return default;
    }

    private static ValueTask TransformResponse(ResponseTransformContext context)
    {
        var proxyResponse = context.ProxyResponse;
        var response = context.HttpContext.Response;
        if (proxyResponse is not null && context.HeadersCopied && !response.HasStarted)
        {
            KeepGatewaysOwn(proxyResponse.Headers.NonValidated, response.Headers);
            KeepGatewaysOwn(proxyResponse.Content.Headers.NonValidated, response.Headers);
        }

        return default;
    }

    // Of each gateway header the backend sent too, the values YARP appended after the gateway's are dropped.
    private static void KeepGatewaysOwn(System.Net.Http.Headers.HttpHeadersNonValidated backend, IHeaderDictionary response)
    {
        foreach (var header in backend)
        {
            var name = header.Key;
            var gateway = IsGatewayHeader(name);
            if (!gateway && !name.StartsWith(RateLimitHeaderPrefix, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var values = response[name];
            var own = values.Count - header.Value.Count;
            if (own > 0)
            {
                response[name] = own == 1 ? values[0] : new StringValues(values.ToArray()[..own]);
            }
            else if (gateway)
            {
                response.Remove(name);
            }
        }
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
}
