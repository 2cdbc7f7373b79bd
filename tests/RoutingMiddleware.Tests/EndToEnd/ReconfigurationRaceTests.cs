using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelRouting.Tests.EndToEnd.Support;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>
/// SPEC §11: a reload is one change. Clusters (and the endpoints on them) are added and removed every 100 ms,
/// the proxy configuration and the registry each applied on its own schedule and in either order, while 8
/// clients send requests: none fails, each is served by the cluster its endpoint names, and the route a request
/// is reassigned to is always bound to that cluster.
/// </summary>
public sealed class ReconfigurationRaceTests
{
    [Fact]
    public async Task ClustersAddedAndRemovedEvery100ms_UnderLoad_NoRequestFailsOrIsMisrouted()
    {
        await using var b1 = await TestBackend.StartAsync("b1");
        await using var b2 = await TestBackend.StartAsync("b2");
        await using var bx = await TestBackend.StartAsync("bx");
        var modelRouting = new MutableConfigurationProvider();
        var proxy = new InMemoryConfigProvider([Route()], Clusters(b1, b2, bx, withChurn: false));
        modelRouting.Replace(Registry(withChurn: false));
        var mismatches = 0;

        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IProxyConfigProvider>(proxy);
        var routingConfig = new ConfigurationBuilder().Add(new MutableConfigurationSource(modelRouting)).Build();
        builder.Services.AddReverseProxy().AddModelRouting(routingConfig.GetSection("ModelRouting"));
        await using var app = builder.Build();
        app.MapModelRouting();
        app.MapReverseProxy(pipeline =>
        {
            pipeline.UseModelRouting();
            pipeline.Use((context, next) =>
            {
                var feature = context.GetReverseProxyFeature();
                if (feature.Route.Config.ClusterId != feature.Cluster.Config.ClusterId)
                {
                    Interlocked.Increment(ref mismatches);
                }

                return next();
            });
            pipeline.UseLoadBalancing();
        });
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(30) };

        var results = new ConcurrentQueue<(string Model, HttpStatusCode Status, string? Backend, string? Code)>();
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            string[] models = ["e1", "e2", "ex"];
            for (var n = i; !stop.IsCancellationRequested; n++)
            {
                var model = models[n % models.Length];
                using var response = await client.PostAsync("/v1/chat/completions", new StringContent(E2EHelpers.Chat(model), System.Text.Encoding.UTF8, "application/json"));
                var body = await response.Content.ReadAsStringAsync();
                var backend = response.Headers.TryGetValues("x-backend", out var values) ? values.Single() : null;
                var code = response.IsSuccessStatusCode ? null : System.Text.Json.Nodes.JsonNode.Parse(body)?["error"]?["code"]?.GetValue<string>();
                results.Enqueue((model, response.StatusCode, backend, code));
            }
        })).ToList();

        // 40 changes, 100 ms apart; each applies the proxy configuration and the registry in a random order,
        // up to 20 ms apart, as two configuration sources changing "at once" do.
        var random = new Random(42);
        for (var change = 1; change <= 40; change++)
        {
            await Task.Delay(100);
            var withChurn = change % 2 == 1;
            Action applyProxy = () => proxy.Update([Route()], Clusters(b1, b2, bx, withChurn));
            Action applyRegistry = () => modelRouting.Replace(Registry(withChurn));
            var (first, second) = random.Next(2) == 0 ? (applyProxy, applyRegistry) : (applyRegistry, applyProxy);
            first();
            await Task.Delay(random.Next(21));
            second();
        }

        await stop.CancelAsync();
        await Task.WhenAll(clients);
        await app.StopAsync();

        var all = results.ToArray();
        Assert.True(all.Length >= 200, $"only {all.Length} requests were sent during the churn");
        var wrong = all.Where(r => r.Model switch
        {
            "e1" => r.Status != HttpStatusCode.OK || r.Backend != "b1",
            "e2" => r.Status != HttpStatusCode.OK || r.Backend != "b2",
            _ => !((r.Status == HttpStatusCode.OK && r.Backend == "bx") || (r.Status == HttpStatusCode.NotFound && r.Code == "model_not_found")),
        }).ToList();
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {all.Length} requests failed or were misrouted, e.g. "
            + string.Join("; ", wrong.Take(5).Select(w => $"{w.Model} → {(int)w.Status} {w.Code} from {w.Backend}")));
        Assert.Equal(0, mismatches);
        Assert.Contains(all, r => r.Model == "ex" && r.Status == HttpStatusCode.OK);
    }

    private static RouteConfig Route() => new() { RouteId = "openai", ClusterId = "c1", Match = new RouteMatch { Path = "/v1/{**rest}" } };

    // The churned cluster sits between the two stable ones, so a positional numbering of generated routes would shift.
    private static List<ClusterConfig> Clusters(TestBackend b1, TestBackend b2, TestBackend bx, bool withChurn)
    {
        var clusters = new List<ClusterConfig> { Cluster("c1", b1) };
        if (withChurn)
        {
            clusters.Add(Cluster("cx", bx));
        }

        clusters.Add(Cluster("c2", b2));
        return clusters;
    }

    private static ClusterConfig Cluster(string id, TestBackend backend) => new()
    {
        ClusterId = id,
        Destinations = new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = backend.Url } },
    };

    private static Dictionary<string, string?> Registry(bool withChurn)
    {
        var data = new Dictionary<string, string?>
        {
            ["ModelRouting:Endpoints:0:Id"] = "e1",
            ["ModelRouting:Endpoints:0:Cluster"] = "c1",
            ["ModelRouting:Endpoints:0:IsDefault"] = "true",
            ["ModelRouting:Endpoints:1:Id"] = "e2",
            ["ModelRouting:Endpoints:1:Cluster"] = "c2",
        };
        if (withChurn)
        {
            data["ModelRouting:Endpoints:2:Id"] = "ex";
            data["ModelRouting:Endpoints:2:Cluster"] = "cx";
        }

        return data;
    }

    private sealed class MutableConfigurationSource(MutableConfigurationProvider provider) : IConfigurationSource
    {
        public IConfigurationProvider Build(IConfigurationBuilder builder) => provider;
    }

    /// <summary>A configuration source whose whole content is replaced at once, then announced as a reload.</summary>
    private sealed class MutableConfigurationProvider : ConfigurationProvider
    {
        public void Replace(Dictionary<string, string?> data)
        {
            Data = new Dictionary<string, string?>(data, StringComparer.OrdinalIgnoreCase);
            OnReload();
        }
    }
}
