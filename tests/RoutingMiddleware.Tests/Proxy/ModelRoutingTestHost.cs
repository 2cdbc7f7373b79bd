using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelRouting.Configuration;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Tests.Proxy;

/// <summary>
/// A YARP host on TestServer with model routing, whose proxy pipeline ends in a step that echoes the
/// route, the cluster and the body the forwarder would send (as YARP's own RoutingTests do): no backend.
/// </summary>
internal sealed class ModelRoutingTestHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ModelRoutingTestHost(WebApplication app)
    {
        _app = app;
        Client = app.GetTestClient();
    }

    public HttpClient Client { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<ModelRoutingTestHost> StartAsync(Action<ModelRoutingOptions> configure, params string[] clusters)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        var clusterConfigs = clusters.Select(c => new ClusterConfig
        {
            ClusterId = c,
            Destinations = new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = $"http://{c}.invalid/" } },
        }).ToList();
        var routes = new List<RouteConfig>
        {
            new() { RouteId = "openai", ClusterId = clusters[0], Match = new RouteMatch { Path = "/v1/{**rest}" } },
        };
        // Runtime state in memory: never the machine's default state file.
        builder.Services.AddReverseProxy().LoadFromMemory(routes, clusterConfigs).AddModelRouting(o =>
        {
            o.Admin.StateFile = "";
            configure(o);
        });
        var app = builder.Build();
        app.MapReverseProxy(proxy =>
        {
            proxy.UseModelRouting();
            proxy.Use(EchoAsync);
        });
        await app.StartAsync();
        return new ModelRoutingTestHost(app);
    }

    public static Task<ModelRoutingTestHost> StartAsync(params (string Id, string Cluster, int Context, bool IsDefault)[] endpoints) =>
        StartAsync(
            o => o.Endpoints.AddRange(endpoints.Select(e => new ModelEndpointOptions { Id = e.Id, Cluster = e.Cluster, MaxContextLength = e.Context, IsDefault = e.IsDefault })),
            [.. endpoints.Select(e => e.Cluster).Distinct()]);

    public async Task<Echo> PostAsync(string path, string body)
    {
        using var response = await Client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        return await Echo.ReadAsync(response);
    }

    private static async Task EchoAsync(HttpContext context, Func<Task> next)
    {
        var feature = context.GetReverseProxyFeature();
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        context.Response.Headers["x-echo-cluster"] = feature.Cluster.Config.ClusterId;
        context.Response.Headers["x-echo-route"] = feature.Route.Config.RouteId;
        context.Response.Headers["x-echo-route-cluster"] = feature.Route.Config.ClusterId;
        context.Response.Headers["x-echo-content-length"] = context.Request.ContentLength?.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await context.Response.Body.WriteAsync(buffer.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    internal sealed record Echo(int Status, string? Cluster, string? Route, string? RouteCluster, string Body, long? ContentLength, HttpResponseMessage Response)
    {
        public static async Task<Echo> ReadAsync(HttpResponseMessage response)
        {
            static string? Header(HttpResponseMessage r, string name) => r.Headers.TryGetValues(name, out var v) ? v.Single() : null;
            var bytes = await response.Content.ReadAsByteArrayAsync();
            var body = Encoding.UTF8.GetString(bytes);
            var length = Header(response, "x-echo-content-length");
            return new Echo((int)response.StatusCode, Header(response, "x-echo-cluster"), Header(response, "x-echo-route"),
                Header(response, "x-echo-route-cluster"), body, length is null ? null : long.Parse(length, System.Globalization.CultureInfo.InvariantCulture), response) { BodyBytes = bytes };
        }

        public byte[] BodyBytes { get; init; } = [];

        public string? ErrorCode => Status >= 400 ? JsonDocument.Parse(Body).RootElement.GetProperty("error").GetProperty("code").GetString() : null;

        public string? Header(string name) => Response.Headers.TryGetValues(name, out var v) ? v.Single() : null;
    }
}
