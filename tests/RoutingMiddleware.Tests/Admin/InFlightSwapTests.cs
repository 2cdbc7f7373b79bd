using System.Net;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Admin;

/// <summary>Issue 6: 1,000 requests in flight while other endpoints are registered, replaced and unregistered: zero failures.</summary>
public sealed class InFlightSwapTests
{
    private static readonly string[] s_clusters = ["c1", "c2", "c3"];

    [Fact]
    public async Task ThousandRequestsInFlight_WhileEndpointsChurn_NoFailureForEndpointsThatStay()
    {
        using var dir = new TempDirectory();
        static Task SlowAnswer(Microsoft.AspNetCore.Http.HttpContext context, RecordedRequest request) =>
            Task.Delay(Random.Shared.Next(0, 30)).ContinueWith(_ => context.Response.WriteAsync("{\"ok\":true}"), TaskScheduler.Default).Unwrap();
        await using var b1 = await TestBackend.StartAsync("b1", SlowAnswer);
        await using var b2 = await TestBackend.StartAsync("b2", SlowAnswer);
        await using var b3 = await TestBackend.StartAsync("b3", SlowAnswer);
        var stay = new[] { "stay-a", "stay/b:lora", "stay-c", "stay-d" };
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["c1"] = [b1.Url], ["c2"] = [b2.Url], ["c3"] = [b3.Url] },
            [
                TestGateway.Endpoint(stay[0], "c1", isDefault: true),
                E2EHelpers.Endpoint(stay[1], "c2", "stay/b", adapter: "lora"),
                TestGateway.Endpoint(stay[2], "c3", aliases: "stay-alias"),
                TestGateway.Endpoint("churn-config", "c1"),
            ],
            AdminSection(dir.File("state.json"))));

        var admin = gateway.ManagementClient;
        Assert.Equal(HttpStatusCode.Created, (await admin.AdminAsync(HttpMethod.Put, EndpointPath(stay[3]), Definition("c2"))).Status);

        using var churning = new CancellationTokenSource();
        var changes = 0;
        var churn = Task.Run(async () =>
        {
            var clusters = s_clusters;
            for (var i = 0; !churning.IsCancellationRequested; i++)
            {
                var id = $"churn/{i % 5}:x";
                var steps = new (HttpMethod, string, JsonNode?)[]
                {
                    (HttpMethod.Put, EndpointPath(id), Definition(clusters[i % 3], baseModel: "churn", adapter: "x", maxContext: 1000 + i)),
                    (HttpMethod.Put, EndpointPath(id), Definition(clusters[(i + 1) % 3], baseModel: "churn", adapter: "y")),
                    (HttpMethod.Put, "/admin/aliases/churn-alias", new JsonObject { ["target"] = id }),
                    (HttpMethod.Put, "/admin/status/" + Uri.EscapeDataString(id), new JsonObject { ["status"] = i % 2 == 0 ? "Disabled" : "Ready" }),
                    (HttpMethod.Delete, EndpointPath(id), null),
                    (i % 2 == 0 ? HttpMethod.Delete : HttpMethod.Put, EndpointPath("churn-config"), i % 2 == 0 ? null : Definition("c3")),
                };
                foreach (var (method, path, body) in steps)
                {
                    var result = await admin.AdminAsync(method, path, body);
                    Assert.True(result.Status is HttpStatusCode.OK or HttpStatusCode.Created, $"{method} {path}: {(int)result.Status} {result.Body?.ToJsonString()}");
                    Interlocked.Increment(ref changes);
                }
            }
        });

        var requests = Enumerable.Range(0, 1000).Select(async i =>
        {
            var model = stay[i % stay.Length];
            var name = i % 9 == 0 ? "stay-alias" : model;
            using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat(name));
            var endpoint = response.Headers.TryGetValues("x-gateway-endpoint", out var v) ? v.Single() : null;
            return (Status: response.StatusCode, Expected: name == "stay-alias" ? stay[2] : model, Endpoint: endpoint, Body: response.IsSuccessStatusCode ? "" : await response.Content.ReadAsStringAsync());
        }).ToList();
        var results = await Task.WhenAll(requests);
        await churning.CancelAsync();
        await churn;

        var failures = results.Where(r => r.Status != HttpStatusCode.OK || r.Endpoint != r.Expected).ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of 1000 failed, e.g. {failures.FirstOrDefault()}");
        Assert.True(changes >= 6, $"only {changes} admin changes happened during the requests");
    }
}
