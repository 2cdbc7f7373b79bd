using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Tests.Admin;

/// <summary>
/// SPEC §12: <c>RequireManagementListener()</c> is a reusable convention (later <c>/metrics</c> and <c>/status</c>):
/// an endpoint of the host's own answers only on the management listener, and needs no key.
/// </summary>
public sealed class ManagementListenerConventionTests
{
    [Fact]
    public async Task RequireManagementListener_OwnEndpoint_AnswersOnlyOnTheManagementPort()
    {
        var management = AdminTestSupport.ManagementUrl();
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0", management);
        builder.Services.AddReverseProxy()
            .LoadFromMemory(
                [new RouteConfig { RouteId = "all", ClusterId = "c", Match = new RouteMatch { Path = "/{**rest}" } }],
                [new ClusterConfig { ClusterId = "c", Destinations = new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = "http://127.0.0.1:9/" } } }])
            .AddModelRouting(o =>
            {
                o.Admin.Urls = management;
                o.Admin.StateFile = "";
            });
        await using var app = builder.Build();
        app.MapReverseProxy(proxy => proxy.UseModelRouting());
        app.MapGet("/metrics", () => "metrics here").RequireManagementListener();
        await app.StartAsync();
        var publicUrl = app.Urls.First(u => new Uri(u).Port != new Uri(management).Port);

        using var client = new HttpClient();
        using var onManagement = await client.GetAsync(management + "/metrics");
        using var onPublic = await client.GetAsync(publicUrl + "/metrics");

        Assert.Equal(HttpStatusCode.OK, onManagement.StatusCode);
        Assert.Equal("metrics here", await onManagement.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, onPublic.StatusCode);
        Assert.Equal("application/json", onPublic.Content.Headers.ContentType?.MediaType);
        await app.StopAsync();
    }
}
