// Small Kafka client used by test/services/start.sh (readiness check) and by
// test/services/kafka-tool.sh (create topics, produce and consume by hand).
//
// It uses only kafka-clients from the broker's own class path, so it needs no
// kafka-tools artifact (not published on Maven Central for every 4.x release).
// Compiled once by start.sh into the jar cache; run it through kafka-tool.sh:
//
//   kafka-tool.sh ready
//   kafka-tool.sh create-topic NAME [PARTITIONS]
//   kafka-tool.sh delete-topic NAME
//   kafka-tool.sh list-topics
//   kafka-tool.sh produce NAME VALUE...
//   kafka-tool.sh consume NAME COUNT [TIMEOUT_MS]
//   kafka-tool.sh roundtrip
//
// The bootstrap address comes from STREAMS_KAFKA_BROKERS (default
// 127.0.0.1:9092). Exit code 0 on success, 1 on failure, 2 on bad usage.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class KafkaCheck {
    static final String READY_TOPIC = "__ami_streams_ready";
    static final int TIMEOUT_MS = 10_000;

    public static void main(String[] args) {
        String bootstrap = System.getenv().getOrDefault("STREAMS_KAFKA_BROKERS", "127.0.0.1:9092");
        if (args.length == 0) {
            usage();
            System.exit(2);
        }
        try {
            switch (args[0]) {
                case "ready" -> ready(bootstrap);
                case "create-topic" -> {
                    need(args, 2);
                    createTopic(bootstrap, args[1], args.length > 2 ? Integer.parseInt(args[2]) : 1);
                    System.out.println("created " + args[1]);
                }
                case "delete-topic" -> {
                    need(args, 2);
                    try (Admin admin = admin(bootstrap)) {
                        admin.deleteTopics(List.of(args[1])).all().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
                    }
                    System.out.println("deleted " + args[1]);
                }
                case "list-topics" -> {
                    try (Admin admin = admin(bootstrap)) {
                        List<String> names = new ArrayList<>(admin.listTopics().names().get(TIMEOUT_MS, TimeUnit.MILLISECONDS));
                        Collections.sort(names);
                        names.forEach(System.out::println);
                    }
                }
                case "produce" -> {
                    need(args, 3);
                    List<String> values = List.of(args).subList(2, args.length);
                    produce(bootstrap, args[1], values);
                    System.out.println("produced " + values.size());
                }
                case "consume" -> {
                    need(args, 3);
                    long timeout = args.length > 3 ? Long.parseLong(args[3]) : TIMEOUT_MS;
                    List<String> got = consume(bootstrap, args[1], Integer.parseInt(args[2]), timeout);
                    got.forEach(System.out::println);
                    if (got.size() < Integer.parseInt(args[2])) {
                        System.err.println("consumed only " + got.size() + " of " + args[2] + " records");
                        System.exit(1);
                    }
                }
                case "roundtrip" -> roundtrip(bootstrap);
                default -> {
                    usage();
                    System.exit(2);
                }
            }
        } catch (Exception e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            System.err.println("kafka " + args[0] + " failed against " + bootstrap + ": " + cause);
            System.exit(1);
        }
        System.exit(0);
    }

    static void usage() {
        System.err.println("usage: KafkaCheck ready | create-topic NAME [PARTITIONS] | delete-topic NAME | list-topics"
                + " | produce NAME VALUE... | consume NAME COUNT [TIMEOUT_MS] | roundtrip");
    }

    static void need(String[] args, int n) {
        if (args.length < n) {
            usage();
            System.exit(2);
        }
    }

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "ami-streams-kafka-check");
        return Admin.create(p);
    }

    /** Broker answers metadata, the controller creates a topic, and a record is acknowledged by its leader. */
    static void ready(String bootstrap) throws Exception {
        String clusterId;
        int nodes;
        try (Admin admin = admin(bootstrap)) {
            DescribeClusterResult cluster = admin.describeCluster();
            clusterId = cluster.clusterId().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            nodes = cluster.nodes().get(TIMEOUT_MS, TimeUnit.MILLISECONDS).size();
        }
        createTopic(bootstrap, READY_TOPIC, 1);
        RecordMetadata meta = produce(bootstrap, READY_TOPIC, List.of("ready " + System.currentTimeMillis()));
        System.out.println("ready cluster.id=" + clusterId + " brokers=" + nodes + " probe=" + meta.topic()
                + "-" + meta.partition() + "@" + meta.offset());
    }

    static void createTopic(String bootstrap, String name, int partitions) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1)))
                    .all().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) throw e;
        }
    }

    static RecordMetadata produce(String bootstrap, String topic, List<String> values) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, TIMEOUT_MS);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, TIMEOUT_MS - 1000);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        RecordMetadata last = null;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            for (String v : values) {
                last = producer.send(new ProducerRecord<>(topic, v)).get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            }
        }
        return last;
    }

    /** Reads up to count records of every partition from the beginning, without a consumer group. */
    static List<String> consume(String bootstrap, String topic, int count, long timeoutMs) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs));
            if (infos == null || infos.isEmpty()) throw new UnknownTopicOrPartitionException(topic);
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo info : infos) parts.add(new TopicPartition(topic, info.partition()));
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (out.size() < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    if (out.size() < count) out.add(r.value());
                }
            }
        }
        return out;
    }

    /** Creates a fresh topic, produces one record, reads it back and deletes the topic. */
    static void roundtrip(String bootstrap) throws Exception {
        String topic = "ami-streams-roundtrip-" + UUID.randomUUID();
        String value = "hello " + System.nanoTime();
        createTopic(bootstrap, topic, 1);
        try {
            produce(bootstrap, topic, List.of(value));
            List<String> got = consume(bootstrap, topic, 1, TIMEOUT_MS);
            if (!got.equals(List.of(value))) {
                throw new IllegalStateException("expected [" + value + "], consumed " + got);
            }
            System.out.println("roundtrip ok topic=" + topic + " value=" + value);
        } finally {
            try (Admin admin = admin(bootstrap)) {
                admin.deleteTopics(List.of(topic)).all().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            }
        }
    }
}
