package dev.isthmus.packaging;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * What the library's pom hands to every engine that depends on it: a logging binding would
 * silence or clash with the engine's own, so one may appear only as optional (our command line and
 * bundle) or for tests.
 */
class PackagingTest {
    private static final Pattern BINDING = Pattern.compile(
            "slf4j-(nop|simple|jdk14|reload4j|log4j12)|logback-classic|log4j-slf4j2?-impl|slf4j-jdk-platform-logging");

    @Test
    void noLoggingBindingReachesTheLibrarysUsers() throws Exception {
        Path pom = Path.of("pom.xml");
        assertTrue(Files.isRegularFile(pom), "run from the project root: " + pom.toAbsolutePath());
        NodeList dependencies = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(pom.toFile())
                .getDocumentElement().getElementsByTagName("dependency");
        int checked = 0;
        for (int i = 0; i < dependencies.getLength(); i++) {
            Element d = (Element) dependencies.item(i);
            String artifact = text(d, "artifactId");
            if (!BINDING.matcher(artifact).matches()) continue;
            checked++;
            boolean optional = "true".equals(text(d, "optional"));
            boolean test = "test".equals(text(d, "scope"));
            assertTrue(optional || test, artifact + " would reach every user of the library: make it optional or test-scoped");
        }
        assertTrue(checked > 0 || dependencies.getLength() > 0, "no dependencies read from " + pom);
    }

    private static String text(Element e, String tag) {
        NodeList nodes = e.getElementsByTagName(tag);
        return nodes.getLength() == 0 ? "" : nodes.item(0).getTextContent().trim();
    }
}
