using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace ModelRouting.Failover;

/// <summary>
/// A response transform on every route (SPEC §13): a backend status in <c>Failover:RetryOn</c>, when another
/// attempt may follow, is held back: YARP discards its body and starts no response, so the failover loop
/// can send the request elsewhere.
/// </summary>
internal sealed class FailoverTransforms : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context) => context.AddResponseTransform(static context =>
    {
        if (context.ProxyResponse is { } response
            && context.HttpContext.Features.Get<FailoverAttempt>() is { } attempt
            && !context.HttpContext.Response.HasStarted
            && attempt.TryHoldBack((int)response.StatusCode, RetryAfter(response)))
        {
            context.SuppressResponseBody = true;
        }

        return default;
    });

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var retryAfter = response.Headers.RetryAfter;
        if (retryAfter?.Delta is { } delta)
        {
            return delta;
        }

        return retryAfter?.Date is { } date ? date - DateTimeOffset.UtcNow : null;
    }
}
