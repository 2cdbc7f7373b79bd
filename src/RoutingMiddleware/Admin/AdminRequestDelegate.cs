using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelRouting.Errors;
using ModelRouting.SharedState;

namespace ModelRouting.Admin;

/// <summary>
/// Turns a handler method into an endpoint's request delegate. A change whose state file could not be
/// written was not applied (<see cref="ModelRegistrySource.Administer"/> saves first): it answers 503
/// <c>state_not_saved</c>, naming the file. A change that could not be written to the shared state (Redis,
/// SPEC §16) was not applied either: 503 <c>shared_state_unavailable</c>.
/// </summary>
internal static class AdminRequestDelegate
{
    public static RequestDelegate For<THandlers>(Func<THandlers, Func<HttpContext, Task>> handler)
        where THandlers : notnull => async context =>
    {
        var handlers = context.RequestServices.GetRequiredService<THandlers>();
        try
        {
            await handler(handlers)(context);
        }
        catch (RuntimeStateNotSavedException e) when (!context.Response.HasStarted)
        {
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(AdminRequestDelegate).FullName!);
            AdminLog.StateNotSaved(logger, e.Path, e.InnerException?.Message ?? e.Message);
            await new OpenAIError(
                StatusCodes.Status503ServiceUnavailable,
                OpenAIError.ServerError,
                "state_not_saved",
                $"The change was not saved and not applied: the runtime state file '{e.Path}' (ModelRouting:Admin:StateFile) could not be written ({e.InnerException?.Message}). Nothing changed; fix the file's location or permissions and retry.").WriteAsync(context);
        }
        catch (SharedStateUnavailableException e) when (!context.Response.HasStarted)
        {
            await new OpenAIError(
                StatusCodes.Status503ServiceUnavailable,
                OpenAIError.ServerError,
                "shared_state_unavailable",
                $"The change was not applied: the shared state (ModelRouting:Redis) is unavailable ({e.Message}). Nothing changed on any replica; retry when Redis answers.",
                RetryAfterSeconds: 1).WriteAsync(context);
        }
    };
}
