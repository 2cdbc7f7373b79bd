using System.Text;
using System.Text.Json;

namespace ModelRouting.Benchmarks;

/// <summary>Builds realistic chat-completion bodies of a given size: a system prompt, tools, and turns of prose, code and JSON.</summary>
internal static class ChatBodies
{
    private const string Prose =
        "The gateway reads the request body once, estimates the prompt's tokens and routes the request to the cluster "
        + "that serves the model. Operators point the official SDKs at it and expect it to just work, fast. ";

    private const string Code = "public static int Add(int a, int b)\n{\n    return a + b; // the sum\n}\n";

    private const string Json = "{\"id\": 42, \"name\": \"widget\", \"tags\": [\"a\", \"b\"], \"price\": 12.5}\n";

    public static byte[] Create(int bytes, int systemPromptBytes = 2048)
    {
        var system = Repeat(Prose, Math.Min(systemPromptBytes, bytes / 2));
        var messages = new List<object> { new { role = "system", content = system } };
        var size = system.Length + 300;
        var turn = 0;
        while (size < bytes)
        {
            // Each turn starts differently, as the turns of a real conversation do.
            var text = $"Turn {turn}: " + (turn % 3) switch
            {
                0 => Repeat(Prose, Math.Min(2048, bytes - size)),
                1 => Repeat(Code, Math.Min(2048, bytes - size)),
                _ => Repeat(Json, Math.Min(2048, bytes - size)),
            };
            messages.Add(new { role = turn % 2 == 0 ? "user" : "assistant", content = text });
            size += text.Length + 40 + text.Count(c => c is '"' or '\n' or '\\');
            turn++;
        }

        return JsonSerializer.SerializeToUtf8Bytes(new
        {
            model = "qwen3-8b",
            messages,
            max_tokens = 512,
            temperature = 0.7,
            stream = true,
        });
    }

    /// <summary>A body whose system prompt is <paramref name="systemPromptBytes"/> long and whose user turn is short.</summary>
    public static byte[] WithLongSystemPrompt(int systemPromptBytes) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        model = "qwen3-8b",
        messages = new object[]
        {
            new { role = "system", content = Repeat(Prose, systemPromptBytes) },
            new { role = "user", content = "Summarize the policy above in one sentence." },
        },
    });

    private static string Repeat(string unit, int length)
    {
        var builder = new StringBuilder(length + unit.Length);
        while (builder.Length < length)
        {
            builder.Append(unit);
        }

        return builder.ToString(0, Math.Max(1, length));
    }
}
