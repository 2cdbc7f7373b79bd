using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Proxy;
using Yarp.ReverseProxy.Model;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Adds the model-routing step to YARP's proxy pipeline.</summary>
public static class ModelRoutingPipelineExtensions
{
    /// <summary>
    /// Routes OpenAI requests by model and context (SPEC §4–§9) and answers <c>/v1/models</c>,
    /// <c>/healthz</c> and <c>/readyz</c>. Call first inside <c>MapReverseProxy(pipeline =&gt; …)</c>, before
    /// <c>UseSessionAffinity()</c>, <c>UseLoadBalancing()</c> and <c>UsePassiveHealthChecks()</c>.
    /// </summary>
    public static IReverseProxyApplicationBuilder UseModelRouting(this IReverseProxyApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (builder.ApplicationServices.GetService<ModelRoutingMarker>() is null)
        {
            throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'AddModelRouting(...)' on the reverse proxy builder "
                + "('services.AddReverseProxy().LoadFromConfig(...).AddModelRouting(...)').");
        }

        builder.UseMiddleware<ModelRoutingMiddleware>();
        return builder;
    }
}
