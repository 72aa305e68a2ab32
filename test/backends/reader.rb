# A Ruby backend behind the middleware, for the end-to-end tests: it reads each request
# the ways Rack backends (Rails, Sinatra) do (JSON.parse, Rack::Request's POST and params,
# Rack::Utils' parse_query and parse_nested_query) and answers what it read as JSON, for
# the test to hold against the X-Zego-* headers the middleware wrote.
#
# Run with: ruby reader.rb <port>; it prints "listening" once it serves.
require 'json'
require 'rack'
require 'webrick'

def top_level(hash)
  return nil unless hash.is_a?(Hash) && !hash.empty?
  hash.transform_values { |v| v.is_a?(String) ? v.dup.force_encoding('UTF-8').scrub : v }
end

def attempt
  yield
rescue StandardError
  nil
end

app = lambda do |env|
  req = Rack::Request.new(env)
  body = req.body.read
  req.body.rewind
  headers = {}
  env.each do |name, value|
    headers[name] = value.dup.force_encoding('UTF-8').scrub if name.start_with?('HTTP_X_ZEGO')
  end
  form = req.media_type == 'application/x-www-form-urlencoded'
  readings = {
    'json_parse' => attempt { top_level(JSON.parse(body)) },
    'rack_post' => attempt { top_level(req.POST) },
    'rack_params' => attempt { top_level(req.params) },
    # parse_query and parse_nested_query where the Content-Type says form, as a backend
    # that dispatches on it does.
    'parse_query' => form ? attempt { top_level(Rack::Utils.parse_query(body)) } : nil,
    'parse_nested_query' => form ? attempt { top_level(Rack::Utils.parse_nested_query(body)) } : nil
  }
  [200, { 'Content-Type' => 'application/json' }, [JSON.generate({ backend: 'ruby', headers: headers, readings: readings })]]
end

server = WEBrick::HTTPServer.new(BindAddress: '127.0.0.1', Port: Integer(ARGV[0]),
                                 Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN), AccessLog: [])
server.mount '/', Rack::Handler::WEBrick, app
puts 'listening'
$stdout.flush
server.start
