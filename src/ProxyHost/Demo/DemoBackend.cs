using System.Text.Json;
using System.Text.Json.Nodes;

namespace ProxyHost.Demo;

/// <summary>
/// Demo only: a tiny OpenAI-compatible server. It answers chat completions (streaming too), completions,
/// embeddings, responses and the models list with canned text that names the model it was asked for and
/// the backend that answered, so the gateway's routing and rewriting can be seen.
/// </summary>
internal static class DemoBackend
{
    public static WebApplication Create(string name)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();

        app.MapGet("/v1/models", () => Results.Json(new { @object = "list", data = Array.Empty<object>() }));
        app.MapGet("/health", () => Results.Ok());
        app.MapPost("/v1/chat/completions", async (HttpContext context) =>
        {
            var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject ?? [];
            var model = body["model"]?.GetValue<string>() ?? "(none)";
            var last = body["messages"] is JsonArray { Count: > 0 } messages ? Text(messages[^1]?["content"]) : "";
            var reply = $"Hello from demo backend {name}. You asked model '{model}': {Truncate(last, 80)}";
            var id = "chatcmpl-demo-" + Guid.NewGuid().ToString("N")[..12];
            var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            context.Response.Headers["x-demo-backend"] = name;
            if (body["stream"]?.GetValueKind() == JsonValueKind.True)
            {
                context.Response.ContentType = "text/event-stream";
                context.Response.Headers.CacheControl = "no-cache";
                var words = reply.Split(' ');
                for (var i = 0; i < words.Length; i++)
                {
                    var delta = i == 0 ? new JsonObject { ["role"] = "assistant", ["content"] = words[i] } : new JsonObject { ["content"] = " " + words[i] };
                    await WriteEventAsync(context, Chunk(id, created, model, delta, null));
                    await Task.Delay(20, context.RequestAborted);
                }

                await WriteEventAsync(context, Chunk(id, created, model, [], "stop"));
                if (body["stream_options"]?["include_usage"]?.GetValueKind() == JsonValueKind.True)
                {
                    // As vLLM and OpenAI do: a final chunk with no choices and the request's usage.
                    var usage = Chunk(id, created, model, [], null);
                    usage["choices"] = new JsonArray();
                    usage["usage"] = Usage(last.Length / 4 + 1, words.Length);
                    await WriteEventAsync(context, usage);
                }

                await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
                return;
            }

            await context.Response.WriteAsJsonAsync(new JsonObject
            {
                ["id"] = id,
                ["object"] = "chat.completion",
                ["created"] = created,
                ["model"] = model,
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply },
                    ["finish_reason"] = "stop",
                }),
                ["usage"] = Usage(last.Length / 4 + 1, reply.Length / 4 + 1),
            });
        });
        app.MapPost("/v1/completions", async (HttpContext context) =>
        {
            var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject ?? [];
            var model = body["model"]?.GetValue<string>() ?? "(none)";
            context.Response.Headers["x-demo-backend"] = name;
            await context.Response.WriteAsJsonAsync(new JsonObject
            {
                ["id"] = "cmpl-demo",
                ["object"] = "text_completion",
                ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                ["model"] = model,
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["text"] = $" (demo backend {name}, model '{model}')", ["finish_reason"] = "stop" }),
                ["usage"] = Usage(1, 8),
            });
        });
        app.MapPost("/v1/embeddings", async (HttpContext context) =>
        {
            var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject ?? [];
            var model = body["model"]?.GetValue<string>() ?? "(none)";
            var inputs = body["input"] is JsonArray array ? array.Select(Text).ToList() : [Text(body["input"])];
            context.Response.Headers["x-demo-backend"] = name;
            await context.Response.WriteAsJsonAsync(new JsonObject
            {
                ["object"] = "list",
                ["model"] = model,
                ["data"] = new JsonArray([.. inputs.Select((text, i) => (JsonNode)new JsonObject
                {
                    ["object"] = "embedding",
                    ["index"] = i,
                    ["embedding"] = new JsonArray([.. Embed(text).Select(v => (JsonNode)v)]),
                })]),
                ["usage"] = new JsonObject { ["prompt_tokens"] = inputs.Sum(t => t.Length / 4 + 1), ["total_tokens"] = inputs.Sum(t => t.Length / 4 + 1) },
            });
        });
        app.MapPost("/v1/responses", async (HttpContext context) =>
        {
            var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject ?? [];
            var model = body["model"]?.GetValue<string>() ?? "(none)";
            context.Response.Headers["x-demo-backend"] = name;
            var text = $"Hello from demo backend {name}. You asked model '{model}'.";
            await context.Response.WriteAsJsonAsync(new JsonObject
            {
                ["id"] = "resp_demo",
                ["object"] = "response",
                ["created_at"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                ["status"] = "completed",
                ["model"] = model,
                ["output"] = new JsonArray(new JsonObject
                {
                    ["type"] = "message",
                    ["id"] = "msg_demo",
                    ["status"] = "completed",
                    ["role"] = "assistant",
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "output_text", ["text"] = text, ["annotations"] = new JsonArray() }),
                }),
            });
        });
        return app;
    }

    private static JsonObject Chunk(string id, long created, string model, JsonObject delta, string? finish) => new()
    {
        ["id"] = id,
        ["object"] = "chat.completion.chunk",
        ["created"] = created,
        ["model"] = model,
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
    };

    private static JsonObject Usage(int prompt, int completion) => new()
    {
        ["prompt_tokens"] = prompt,
        ["completion_tokens"] = completion,
        ["total_tokens"] = prompt + completion,
    };

    private static async Task WriteEventAsync(HttpContext context, JsonObject chunk)
    {
        await context.Response.WriteAsync("data: " + chunk.ToJsonString() + "\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    private static string Text(JsonNode? content) => content switch
    {
        JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
        JsonArray parts => string.Join(" ", parts.Select(p => p?["text"]?.GetValue<string>()).Where(t => t is not null)),
        null => "",
        _ => content.ToJsonString(),
    };

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length] + "…";

    private static double[] Embed(string text)
    {
        var vector = new double[8];
        for (var i = 0; i < text.Length; i++)
        {
            vector[i % 8] += text[i] / 1000.0;
        }

        var norm = Math.Sqrt(vector.Sum(v => v * v));
        return [.. vector.Select(v => norm == 0 ? 0 : Math.Round(v / norm, 6, MidpointRounding.ToEven))];
    }
}
