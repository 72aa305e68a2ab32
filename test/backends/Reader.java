// A Java backend behind the middleware, for the end-to-end tests: a servlet on Jetty that
// reads each request the ways Java backends do (the servlet's getParameter, Jackson's
// readTree of the bytes) and answers what it read as JSON, for the test to hold against
// the X-Zego-* headers the middleware wrote.
//
// Run with: java -cp <jars>:. Reader <port>; it prints "listening" once it serves.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.Enumeration;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class Reader extends HttpServlet {
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final String[] SPELLINGS = {"event", "Event", "EventType", "event_type", "appid", "Appid", "AppId", "AppID",
      "app_id", "timestamp", "Timestamp", "nonce", "Nonce", "SignatureNonce", "signature", "Signature"};

  @Override
  protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
    ObjectNode out = MAPPER.createObjectNode();
    out.put("backend", "java");
    ObjectNode headers = out.putObject("headers");
    for (Enumeration<String> names = req.getHeaderNames(); names.hasMoreElements();) {
      String name = names.nextElement();
      if (name.toLowerCase().startsWith("x-zego")) {
        StringBuilder joined = new StringBuilder();
        for (Enumeration<String> values = req.getHeaders(name); values.hasMoreElements();) {
          if (joined.length() > 0) joined.append(", ");
          joined.append(values.nextElement());
        }
        headers.put(name, joined.toString());
      }
    }
    ObjectNode readings = out.putObject("readings");
    // getParameter: the query string's parameters, then a form body's, which the
    // container reads from the stream; a servlet that reads parameters does so first.
    ObjectNode params = MAPPER.createObjectNode();
    for (String s : SPELLINGS) {
      String v = req.getParameter(s);
      if (v != null && !v.isEmpty()) params.put(s, v);
    }
    byte[] body = req.getInputStream().readAllBytes(); // what the form reading left: a JSON body
    try {
      // Jackson detects UTF-8, UTF-16 and UTF-32 from the bytes themselves.
      JsonNode tree = MAPPER.readTree(body);
      readings.set("jackson", tree != null && tree.isObject() && tree.size() > 0 ? tree : null);
    } catch (IOException e) {
      readings.putNull("jackson");
    }
    readings.set("getparameter", params.size() > 0 ? params : null);
    resp.setContentType("application/json");
    MAPPER.writeValue(resp.getOutputStream(), out);
  }

  public static void main(String[] args) throws Exception {
    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(Integer.parseInt(args[0]));
    server.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.addServlet(new ServletHolder(new Reader()), "/*");
    server.setHandler(context);
    server.start();
    System.out.println("listening");
    server.join();
  }
}
