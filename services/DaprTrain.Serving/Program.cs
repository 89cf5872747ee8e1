using DaprTrain.Serving;

var builder = WebApplication.CreateBuilder(args);
builder.AddModelServing();
var app = builder.Build();
app.MapModelServing();
app.Run();
