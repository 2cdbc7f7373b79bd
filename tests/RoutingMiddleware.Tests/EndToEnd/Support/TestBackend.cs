using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ModelRouting.Tests.EndToEnd.Support;

/// <summary>A request as a test backend received it.</summary>
public sealed record RecordedRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string BodyText => Encoding.UTF8.GetString(Body);

    public string? Model => JsonNode.Parse(Body)?["model"]?.GetValue<string>();
}

/// <summary>
/// A real Kestrel backend on a free loopback port that records what it receives. The default handler reads
/// the whole body and answers a small chat-completion-shaped JSON naming the backend and the model it saw.
/// </summary>
public sealed class TestBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestBackend(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }

    public string Url => _app.Urls.First();

    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    /// <summary>Starts a backend; <paramref name="url"/> fixes its address (to restart one on the same port).</summary>
    public static async Task<TestBackend> StartAsync(string name, Func<HttpContext, RecordedRequest, Task>? respond = null, string url = "http://127.0.0.1:0")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(url);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var backend = new TestBackend(name, app);
        app.Run(async context =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            var recorded = new RecordedRequest(
                context.Request.Method,
                context.Request.Path + context.Request.QueryString,
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
                buffer.ToArray());
            backend.Requests.Enqueue(recorded);
            if (respond is not null)
            {
                await respond(context, recorded);
                return;
            }

            context.Response.Headers["x-backend"] = name;
            await context.Response.WriteAsJsonAsync(new
            {
                id = "chatcmpl-test",
                @object = "chat.completion",
                created = 1,
                model = recorded.Body.Length > 0 && recorded.Body[0] == '{' ? recorded.Model : null,
                backend = name,
                choices = new[] { new { index = 0, message = new { role = "assistant", content = "ok from " + name }, finish_reason = "stop" } },
                usage = new { prompt_tokens = 1, completion_tokens = 1, total_tokens = 2 },
            });
        });
        await app.StartAsync();
        return backend;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
