using System.Net;
using System.Net.Sockets;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.Admin;

/// <summary>Helpers for calling the admin API through HTTP.</summary>
internal static class AdminTestSupport
{
    public const string Key = "test-admin-key-0123456789";

    /// <summary>The ModelRouting section with the admin key, on a management listener at a free loopback port unless <paramref name="urls"/> says otherwise.</summary>
    public static JsonObject AdminSection(string? stateFile = null, string? urls = null, string? key = Key)
    {
        var admin = new JsonObject { ["Urls"] = urls ?? ManagementUrl() };
        if (key is not null)
        {
            admin["Key"] = key;
        }

        if (stateFile is not null)
        {
            admin["StateFile"] = stateFile;
        }

        return new JsonObject { ["Admin"] = admin };
    }

    /// <summary>A management listener URL at a loopback port that was free a moment ago.</summary>
    public static string ManagementUrl() => $"http://127.0.0.1:{FreeLoopbackPort()}";

    /// <summary>Picks a free loopback port: binds port 0, reads the port the system chose, and releases it.</summary>
    public static int FreeLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    public static string EndpointPath(string id) => "/admin/endpoints/" + Uri.EscapeDataString(id);

    public static async Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> AdminAsync(
        this HttpClient client, HttpMethod method, string path, JsonNode? body = null, string? key = Key)
    {
        using var request = new HttpRequestMessage(method, path);
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text), response);
    }

    public static Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> AdminAsync(
        this TestGateway gateway, HttpMethod method, string path, JsonNode? body = null, string? key = Key) =>
        gateway.ManagementClient.AdminAsync(method, path, body, key);

    /// <summary>Asserts a 400 whose OpenAI error message names <paramref name="field"/>.</summary>
    public static void AssertBadRequest((HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response) result, string field, params string[] mentions)
    {
        Assert.True(result.Status == HttpStatusCode.BadRequest, $"expected 400, got {(int)result.Status}: {result.Body?.ToJsonString()}");
        Assert.Equal("application/json", result.Response.Content.Headers.ContentType?.MediaType);
        var error = result.Body!["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        var message = error["message"]!.GetValue<string>();
        Assert.Contains(field, message);
        foreach (var mention in mentions)
        {
            Assert.Contains(mention, message);
        }
    }

    public static JsonObject Definition(string cluster, string? baseModel = null, string? adapter = null, int? maxContext = null, params string[] aliases)
    {
        var node = new JsonObject { ["Cluster"] = cluster };
        if (baseModel is not null)
        {
            node["BaseModel"] = baseModel;
        }

        if (adapter is not null)
        {
            node["Adapter"] = adapter;
        }

        if (maxContext is not null)
        {
            node["MaxContextLength"] = maxContext;
        }

        if (aliases.Length > 0)
        {
            node["Aliases"] = new JsonArray([.. aliases.Select(a => (JsonNode)a)]);
        }

        return node;
    }
}
