using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ModelRouting.Observability;
using ModelRouting.Usage;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds and maps the gateway's metrics, traces, access log and status page (SPEC §15).</summary>
public static class ModelRoutingObservabilityExtensions
{
    /// <summary>
    /// Adds the gateway's observability, configured from <paramref name="configuration"/> (the
    /// <c>ModelRouting:Observability</c> section, <see cref="ObservabilityOptions"/>; read once): the
    /// <c>ModelRouting</c> meter exported through OpenTelemetry .NET (Prometheus text for
    /// <see cref="MapModelRoutingObservability"/>'s <c>/metrics</c>; OTLP, with traces of the ASP.NET Core, YARP,
    /// <c>ModelRouting</c> and <c>System.Net.Http</c> activity sources, when the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set), the access log and the
    /// status page's rolling window. With <c>Enabled: false</c> nothing is added and nothing is mapped.
    /// </summary>
    public static IReverseProxyBuilder AddModelRoutingObservability(this IReverseProxyBuilder builder, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (services.Any(d => d.ServiceType == typeof(ObservabilityOptions)))
        {
            return builder;
        }

        var options = new ObservabilityOptions();
        configuration?.Bind(options);
        services.AddSingleton(options);
        if (!options.Enabled)
        {
            return builder;
        }

        // OpenTelemetry subscribes to meters by name, process-wide: a second gateway host in the process (tests, or
        // an application that embeds two) would count this one's requests too. Only the meter made by this host's
        // IMeterFactory is exported: the factory is known before the meter is created, when the view is consulted.
        var ownFactory = new StrongBox<IMeterFactory?>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new StatusWindow(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp =>
        {
            ownFactory.Value = sp.GetRequiredService<IMeterFactory>();
            return new GatewayMetrics(ownFactory.Value, sp.GetRequiredService<ModelRouting.Configuration.ModelRegistrySource>());
        });
        services.AddSingleton<IGatewayRequestListener, ObservabilityListener>();

        var telemetry = services.AddOpenTelemetry();
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME")))
        {
            telemetry.ConfigureResource(resource => resource.AddService("model-gateway"));
        }

        telemetry.WithMetrics(metrics => metrics
            .AddMeter(GatewayMetrics.MeterName)
            .AddView(instrument => instrument.Meter.Name == GatewayMetrics.MeterName && !ReferenceEquals(instrument.Meter.Scope, ownFactory.Value)
                ? MetricStreamConfiguration.Drop
                : null)
            .AddPrometheusExporter());
        if (!string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT")))
        {
            // Traces only go somewhere with OTLP: without it no tracer listens, and the activities cost nothing.
            // ASP.NET Core's server span, YARP's proxy.forwarder, the routing span and under it one HTTP call per
            // attempt. The server span must come from a sampled source: the default sampler follows the parent, and
            // ASP.NET Core's activity made without a listener is not recorded, which would drop every span below it.
            telemetry.WithTracing(tracing => tracing.AddSource("Microsoft.AspNetCore", "Yarp.ReverseProxy", GatewayTracing.SourceName, "System.Net.Http"));
            telemetry.UseOtlpExporter();
        }

        return builder;
    }

    /// <summary>
    /// Maps the Prometheus scrape (<c>/metrics</c>), the live status page (<c>/status</c>) and its data
    /// (<c>/status/data</c>) on the management listener only (SPEC §12): no key needed, as is usual for a scrape
    /// port. Needs <see cref="AddModelRoutingObservability"/>.
    /// </summary>
    public static IEndpointConventionBuilder MapModelRoutingObservability(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = endpoints.ServiceProvider.GetService<ObservabilityOptions>()
            ?? throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'AddModelRoutingObservability(...)' on the reverse proxy builder.");

        var group = endpoints.MapGroup("");
        if (options.Enabled)
        {
            string[] get = [HttpMethods.Get, HttpMethods.Head];
            group.MapPrometheusScrapingEndpoint(options.MetricsPath).WithDisplayName("Model routing: metrics");
            group.MapMethods(options.StatusPath, get, StatusEndpoints.PageAsync).WithDisplayName("Model routing: status page");
            group.MapMethods(options.StatusPath.TrimEnd('/') + "/data", get, StatusEndpoints.DataAsync).WithDisplayName("Model routing: status data");
        }

        group.RequireManagementListener();
        return group;
    }
}
