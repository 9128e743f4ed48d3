// A registration kiosk in C# over the mynacard C ABI (libmynacard_ffi.so, mynacard_ffi.dll):
// the card lies on the kiosk's reader, the person consents, the card is registered for
// health-insurance use by face (the kiosk's own face match and 照合番号B), then its eligibility
// is checked by face, and finally a person who is not the holder is turned away by the matcher.
// It runs against the embedded reference service of the library's `sim` feature, with a
// simulated card behind the kiosk's transmit callback. See README.md beside this file.
//
// Build and run (Mono):
//   cargo build -p mynacard-ffi --features sim
//   mcs -warnaserror -out:Kiosk.exe examples/csharp/Kiosk.cs
//   LD_LIBRARY_PATH=target/debug mono Kiosk.exe

using System;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Mynacard.Examples
{
    /// <summary>The library's status codes (MynacardStatus in mynacard.h).</summary>
    public enum Status
    {
        Ok = 0,
        NullArgument = 1,
        InvalidArgument = 2,
        BufferTooSmall = 3,
        CardRemoved = 4,
        Transport = 5,
        Card = 6,
        Service = 7,
        Panic = 8,
    }

    /// <summary>The outcome kinds this kiosk acts on (MynacardOutcomeKind; the values are
    /// stable, and any other kind is read by its name).</summary>
    public enum OutcomeKind
    {
        Unknown = 0,
        Registered = 1,
        AlreadyRegistered = 2,
        Eligible = 4,
        FaceNotMatched = 25,
    }

    /// <summary>MynacardFlow.</summary>
    public enum Flow
    {
        FaceRegistration = 2,
        FaceEligibility = 4,
    }

    /// <summary>MynacardTerminalKind.</summary>
    public enum TerminalKind
    {
        Kiosk = 3,
    }

    /// <summary>A failed library call: its status and the handle's message.</summary>
    public sealed class MynacardException : Exception
    {
        public Status Status { get; }

        public MynacardException(string call, Status status, string detail)
            : base(detail == null ? call + ": " + status : call + ": " + status + ": " + detail)
        {
            Status = status;
        }
    }

    /// <summary>UTF-8 both ways: the ABI's strings are UTF-8 on every platform, which the
    /// default string marshalling (the ANSI code page on Windows) is not.</summary>
    internal static class Utf8
    {
        /// <summary>A NUL-terminated UTF-8 copy of <paramref name="s"/>.</summary>
        internal static byte[] Encode(string s)
        {
            var text = Encoding.UTF8.GetBytes(s);
            var z = new byte[text.Length + 1];
            Buffer.BlockCopy(text, 0, z, 0, text.Length);
            return z;
        }

        /// <summary>The string at <paramref name="p"/> (NUL-terminated UTF-8), or null for NULL.</summary>
        internal static string Decode(IntPtr p)
        {
            if (p == IntPtr.Zero)
            {
                return null;
            }
            int len = 0;
            while (Marshal.ReadByte(p, len) != 0)
            {
                len++;
            }
            var bytes = new byte[len];
            Marshal.Copy(p, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }
    }

    // One SafeHandle per handle type: each frees its handle with its own free function, once,
    // also when an exception unwinds past it, and never while a native call is using it.

    public sealed class ServiceHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public ServiceHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_sim_service_free(handle); return true; }
    }

    public sealed class SimCardHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public SimCardHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_sim_card_free(handle); return true; }
    }

    public sealed class AttestationKeyHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public AttestationKeyHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_sim_attestation_key_free(handle); return true; }
    }

    /// <summary>A string the library allocated for the caller (a `char *` result).</summary>
    public sealed class LibraryString : SafeHandleZeroOrMinusOneIsInvalid
    {
        public LibraryString() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_string_free(handle); return true; }

        /// <summary>The text, or null for NULL.</summary>
        public string Read()
        {
            return IsInvalid ? null : Utf8.Decode(handle);
        }
    }

    public sealed class ClientHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public ClientHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_client_free(handle); return true; }

        /// <summary>Throws unless <paramref name="status"/> is OK, with the client's message.</summary>
        internal void Check(string call, Status status)
        {
            if (status != Status.Ok)
            {
                throw new MynacardException(call, status, Utf8.Decode(Native.mynacard_client_last_error(this)));
            }
        }
    }

    public sealed class OutcomeHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public OutcomeHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_outcome_free(handle); return true; }

        public OutcomeKind Kind { get { return (OutcomeKind)Native.mynacard_outcome_kind(this); } }
        public string KindName { get { return Utf8.Decode(Native.mynacard_outcome_kind_name(this)); } }
        public string RegistrationId { get { return Utf8.Decode(Native.mynacard_outcome_registration_id(this)); } }
        public uint ApduCount { get { return Native.mynacard_outcome_apdu_count(this); } }

        /// <summary>The message for the person in <paramref name="locale"/> ("en", "ja").</summary>
        public string Message(string locale)
        {
            using (LibraryString s = Native.mynacard_outcome_message(this, Utf8.Encode(locale)))
            {
                string text = s.Read();
                if (text == null)
                {
                    throw new MynacardException("mynacard_outcome_message", Status.InvalidArgument, "no message for " + locale);
                }
                return text;
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct Transport
    {
        internal IntPtr Ctx;
        internal IntPtr Transmit;
        internal int ExtendedLength;
        internal UIntPtr MaxResponseLen;
        internal int Contactless;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct Terminal
    {
        internal IntPtr Ctx;
        internal IntPtr Consent;
        internal IntPtr Pin;
        internal IntPtr CollationNumberB;
        internal IntPtr MatchFace;
        internal IntPtr Attest;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct FaceMatch
    {
        internal int Matched;
        internal ushort ScorePermille;
        internal ushort ThresholdPermille;
    }

    // The callbacks' shapes (mynacard.h); every pointer stays an IntPtr and is copied explicitly.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int TransmitFn(IntPtr ctx, IntPtr command, UIntPtr commandLen, IntPtr response, UIntPtr responseCap, IntPtr responseLen);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int ConsentFn(IntPtr ctx, IntPtr text);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int DigitsFn(IntPtr ctx, int retriesLeft, IntPtr digits, UIntPtr digitsCap, IntPtr digitsLen);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int MatchFaceFn(IntPtr ctx, IntPtr photo, UIntPtr photoLen, IntPtr result);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int AttestFn(IntPtr ctx, IntPtr message, UIntPtr messageLen, IntPtr signature, UIntPtr signatureCap, IntPtr signatureLen);

    internal static class Native
    {
        // The runtime maps the name to the platform's file: libmynacard_ffi.so, mynacard_ffi.dll.
        private const string Lib = "mynacard_ffi";

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_string_free(IntPtr s);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_client_new(byte[] serviceUrl, byte[] terminalId, int kind, out ClientHandle client);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_client_run(ClientHandle client, int flow, ref Transport transport, ref Terminal terminal, out OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr mynacard_client_last_error(ClientHandle client);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_client_free(IntPtr client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int mynacard_outcome_kind(OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr mynacard_outcome_kind_name(OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr mynacard_outcome_registration_id(OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint mynacard_outcome_apdu_count(OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern LibraryString mynacard_outcome_message(OutcomeHandle outcome, byte[] locale);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_outcome_free(IntPtr outcome);

        // The `sim` feature: the reference service, the simulated card, what the kiosk's camera
        // reads of it, and a test attestation key. A real kiosk calls its own reader, camera and
        // key store where these are called.
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_sim_service_start(out ServiceHandle service);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr mynacard_sim_service_url(ServiceHandle service);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_sim_service_free(IntPtr service);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_sim_card_new(byte[] profile, out SimCardHandle card);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_sim_card_free(IntPtr card);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int mynacard_sim_transmit(SimCardHandle card, byte[] command, UIntPtr commandLen, byte[] response, UIntPtr responseCap, out UIntPtr responseLen);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int mynacard_sim_collation_number_b(SimCardHandle card, int retriesLeft, byte[] digits, UIntPtr digitsCap, out UIntPtr digitsLen);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_sim_holder_face(SimCardHandle card, byte[] face, UIntPtr faceCap, out UIntPtr faceLen);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_sim_attestation_key_new(byte[] terminalId, out AttestationKeyHandle key);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int mynacard_sim_attest(AttestationKeyHandle key, byte[] message, UIntPtr messageLen, byte[] signature, UIntPtr signatureCap, out UIntPtr signatureLen);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_sim_attestation_key_free(IntPtr key);

        /// <summary>Throws unless a call without a handle succeeded (such calls leave no
        /// message: the status is all there is).</summary>
        internal static void Check(string call, Status status)
        {
            if (status != Status.Ok)
            {
                throw new MynacardException(call, status, null);
            }
        }

        internal static int Length(UIntPtr n)
        {
            return checked((int)n.ToUInt64());
        }

        internal static void WriteSize(IntPtr at, int n)
        {
            // size_t is pointer-sized on every platform the library is built for.
            Marshal.WriteIntPtr(at, new IntPtr(n));
        }
    }

    /// <summary>The kiosk's face matcher. The library hands it the photo read from the chip;
    /// it compares the photo with the camera's capture of the person in front of the kiosk.
    /// This one stands in for a face recognition engine on the simulated card, whose camera
    /// capture of the holder is the chip's photo itself: it scores 1000 for the same image and
    /// 0 otherwise. A real kiosk scores two different pictures of one face here.</summary>
    internal sealed class FaceMatcher
    {
        internal const ushort ThresholdPermille = 800;

        internal FaceMatch Match(byte[] chipPhoto, byte[] capture)
        {
            bool same = chipPhoto.Length > 0 && chipPhoto.Length == capture.Length;
            for (int i = 0; same && i < chipPhoto.Length; i++)
            {
                same = chipPhoto[i] == capture[i];
            }
            ushort score = same ? (ushort)1000 : (ushort)0;
            return new FaceMatch
            {
                Matched = score >= ThresholdPermille ? 1 : 0,
                ScorePermille = score,
                ThresholdPermille = ThresholdPermille,
            };
        }
    }

    /// <summary>The kiosk's devices as the library's callbacks: the card reader, the consent
    /// screen, the camera (照合番号B off the card face, the person in front of it and the face
    /// match) and the attestation key.</summary>
    internal sealed class KioskDevices
    {
        private readonly SimCardHandle card;
        private readonly AttestationKeyHandle key;
        private readonly FaceMatcher matcher = new FaceMatcher();

        // The delegates live in fields for as long as this object is reachable, and Run keeps
        // it reachable until the native call returns: the GC must not collect a delegate whose
        // function pointer the library may still call.
        private readonly TransmitFn transmit;
        private readonly ConsentFn consent;
        private readonly DigitsFn collationNumberB;
        private readonly MatchFaceFn matchFace;
        private readonly AttestFn attest;

        /// <summary>The first exception a callback caught: exceptions must not cross the C ABI,
        /// so the callback reports failure and Run rethrows this afterwards.</summary>
        private Exception failure;

        /// <summary>The camera's capture of the person in front of the kiosk.</summary>
        internal byte[] AtCamera { get; set; }

        internal uint Transmitted { get; private set; }
        internal int Attested { get; private set; }
        internal FaceMatch LastMatch { get; private set; }

        internal KioskDevices(SimCardHandle card, AttestationKeyHandle key, byte[] atCamera)
        {
            this.card = card;
            this.key = key;
            AtCamera = atCamera;
            transmit = Transmit;
            consent = Consent;
            collationNumberB = CollationNumberB;
            matchFace = MatchFace;
            attest = Attest;
        }

        /// <summary>Runs one whole flow on <paramref name="client"/>; the outcome or an exception.</summary>
        internal OutcomeHandle Run(ClientHandle client, Flow flow)
        {
            failure = null;
            Transmitted = 0;
            Attested = 0;
            LastMatch = default(FaceMatch);
            var transport = new Transport
            {
                Ctx = IntPtr.Zero, // the delegates are bound to this object: no context needed
                Transmit = Marshal.GetFunctionPointerForDelegate(transmit),
                ExtendedLength = 1,
                MaxResponseLen = UIntPtr.Zero,
                Contactless = 0,
            };
            var terminal = new Terminal
            {
                Ctx = IntPtr.Zero,
                Consent = Marshal.GetFunctionPointerForDelegate(consent),
                Pin = IntPtr.Zero, // a face kiosk has no PIN pad
                CollationNumberB = Marshal.GetFunctionPointerForDelegate(collationNumberB),
                MatchFace = Marshal.GetFunctionPointerForDelegate(matchFace),
                Attest = Marshal.GetFunctionPointerForDelegate(attest),
            };
            OutcomeHandle outcome;
            Status status = Native.mynacard_client_run(client, (int)flow, ref transport, ref terminal, out outcome);
            GC.KeepAlive(this);
            if (failure != null)
            {
                outcome.Dispose();
                throw new InvalidOperationException("a kiosk device failed during " + flow, failure);
            }
            if (status != Status.Ok)
            {
                outcome.Dispose();
            }
            client.Check("mynacard_client_run", status);
            return outcome;
        }

        private int Transmit(IntPtr ctx, IntPtr command, UIntPtr commandLen, IntPtr response, UIntPtr responseCap, IntPtr responseLen)
        {
            try
            {
                // As with SCardTransmit: managed buffers in, the response copied back out.
                var cmd = new byte[Native.Length(commandLen)];
                Marshal.Copy(command, cmd, 0, cmd.Length);
                var resp = new byte[Native.Length(responseCap)];
                UIntPtr got;
                int status = Native.mynacard_sim_transmit(card, cmd, commandLen, resp, responseCap, out got);
                if (status != (int)Status.Ok)
                {
                    return status; // CARD_REMOVED, BUFFER_TOO_SMALL or a reader failure, as it is
                }
                int n = Native.Length(got);
                Marshal.Copy(resp, 0, response, n);
                Native.WriteSize(responseLen, n);
                Transmitted++;
                return (int)Status.Ok;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return (int)Status.Transport;
            }
        }

        private int Consent(IntPtr ctx, IntPtr text)
        {
            try
            {
                // The kiosk's screen shows the whole text and the person taps "agree"; the log
                // keeps its title.
                string shown = Utf8.Decode(text);
                if (string.IsNullOrEmpty(shown))
                {
                    return 0;
                }
                string[] lines = shown.Split('\n');
                Console.WriteLine("consent shown: " + lines[0] + " (" + lines.Length + " lines); agreed");
                return 1;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return 0;
            }
        }

        private int CollationNumberB(IntPtr ctx, int retriesLeft, IntPtr digits, UIntPtr digitsCap, IntPtr digitsLen)
        {
            var read = new byte[Native.Length(digitsCap)];
            try
            {
                // The camera's reading of the card face, written into the library's buffer.
                UIntPtr len;
                if (Native.mynacard_sim_collation_number_b(card, retriesLeft, read, digitsCap, out len) == 0)
                {
                    return 0;
                }
                int n = Native.Length(len);
                Marshal.Copy(read, 0, digits, n);
                Native.WriteSize(digitsLen, n);
                return 1;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return 0;
            }
            finally
            {
                // 照合番号B opens the card-face records: the kiosk clears its own copy.
                Array.Clear(read, 0, read.Length);
            }
        }

        private int MatchFace(IntPtr ctx, IntPtr photo, UIntPtr photoLen, IntPtr result)
        {
            try
            {
                var chipPhoto = new byte[Native.Length(photoLen)];
                Marshal.Copy(photo, chipPhoto, 0, chipPhoto.Length);
                FaceMatch match = matcher.Match(chipPhoto, AtCamera);
                Marshal.StructureToPtr(match, result, false);
                LastMatch = match;
                return 1;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return 0;
            }
        }

        private int Attest(IntPtr ctx, IntPtr message, UIntPtr messageLen, IntPtr signature, UIntPtr signatureCap, IntPtr signatureLen)
        {
            try
            {
                var msg = new byte[Native.Length(messageLen)];
                Marshal.Copy(message, msg, 0, msg.Length);
                var sig = new byte[Native.Length(signatureCap)];
                UIntPtr len;
                if (Native.mynacard_sim_attest(key, msg, messageLen, sig, signatureCap, out len) == 0)
                {
                    return 0;
                }
                int n = Native.Length(len);
                Marshal.Copy(sig, 0, signature, n);
                Native.WriteSize(signatureLen, n);
                Attested++;
                return 1;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return 0;
            }
        }
    }

    public static class Kiosk
    {
        private const string TerminalId = "kiosk-0001";

        public static int Main()
        {
            Console.OutputEncoding = new UTF8Encoding(false);
            try
            {
                if (Run())
                {
                    Console.WriteLine("kiosk: done");
                    return 0;
                }
                Console.Error.WriteLine("kiosk: a flow did not end as expected");
                return 1;
            }
            catch (Exception e)
            {
                Console.Error.WriteLine("kiosk: " + e);
                return 2;
            }
        }

        /// <summary>The devices and the service, then the flows; true when every flow ended
        /// as a kiosk expects.</summary>
        private static bool Run()
        {
            ServiceHandle service;
            Native.Check("mynacard_sim_service_start", Native.mynacard_sim_service_start(out service));
            using (service)
            using (SimCardHandle card = NewCard("face-auth"))
            using (SimCardHandle otherCard = NewCard("adult"))
            {
                AttestationKeyHandle key;
                Native.Check("mynacard_sim_attestation_key_new",
                    Native.mynacard_sim_attestation_key_new(Utf8.Encode(TerminalId), out key));
                using (key)
                {
                    string url = Utf8.Decode(Native.mynacard_sim_service_url(service));
                    if (url == null)
                    {
                        throw new MynacardException("mynacard_sim_service_url", Status.NullArgument, "no URL");
                    }
                    var devices = new KioskDevices(card, key, HolderFace(card));
                    return RunFlows(url, devices, HolderFace(otherCard));
                }
            }
        }

        private static SimCardHandle NewCard(string profile)
        {
            SimCardHandle card;
            Native.Check("mynacard_sim_card_new", Native.mynacard_sim_card_new(Utf8.Encode(profile), out card));
            return card;
        }

        /// <summary>The camera's capture of the holder of <paramref name="card"/>: the length
        /// first, then the bytes.</summary>
        private static byte[] HolderFace(SimCardHandle card)
        {
            UIntPtr len;
            Status status = Native.mynacard_sim_holder_face(card, null, UIntPtr.Zero, out len);
            if (status != Status.BufferTooSmall)
            {
                // A capture always has bytes, so asking with no room cannot succeed.
                throw new MynacardException("mynacard_sim_holder_face", status, "no capture length");
            }
            var face = new byte[Native.Length(len)];
            Native.Check("mynacard_sim_holder_face", Native.mynacard_sim_holder_face(card, face, len, out len));
            return face;
        }

        /// <summary>The face registration, the eligibility check, and a stranger at the
        /// camera, with one client.</summary>
        private static bool RunFlows(string url, KioskDevices devices, byte[] strangerFace)
        {
            ClientHandle client;
            Native.Check("mynacard_client_new",
                Native.mynacard_client_new(Utf8.Encode(url), Utf8.Encode(TerminalId), (int)TerminalKind.Kiosk, out client));
            using (client)
            {
                bool registered = Report("registration", devices, client, Flow.FaceRegistration, OutcomeKind.Registered);
                bool eligible = Report("eligibility", devices, client, Flow.FaceEligibility, OutcomeKind.Eligible);
                byte[] holderFace = devices.AtCamera;
                devices.AtCamera = strangerFace;
                bool turnedAway = Report("stranger", devices, client, Flow.FaceEligibility, OutcomeKind.FaceNotMatched);
                devices.AtCamera = holderFace;
                return registered && eligible && turnedAway;
            }
        }

        /// <summary>Runs <paramref name="flow"/>, prints its outcome, and says whether it was
        /// <paramref name="expected"/>.</summary>
        private static bool Report(string label, KioskDevices devices, ClientHandle client, Flow flow, OutcomeKind expected)
        {
            using (OutcomeHandle outcome = devices.Run(client, flow))
            {
                FaceMatch match = devices.LastMatch;
                Console.WriteLine(label + " face match: " + (match.Matched != 0 ? "matched" : "not matched")
                    + " (score " + match.ScorePermille + "/1000, threshold " + match.ThresholdPermille + ")");
                Console.WriteLine(label + " outcome: " + outcome.KindName);
                string id = outcome.RegistrationId;
                if (id != null)
                {
                    Console.WriteLine(label + " id: " + id);
                }
                Console.WriteLine(label + " message (en): " + outcome.Message("en"));
                Console.WriteLine(label + " message (ja): " + outcome.Message("ja"));
                Console.WriteLine(label + " apdus: " + devices.Transmitted + ", attestations: " + devices.Attested);
                // The library counts what it sent; the reader callback counts what it carried.
                if (outcome.ApduCount != devices.Transmitted)
                {
                    Console.Error.WriteLine(label + ": the library counted " + outcome.ApduCount + " APDUs, the reader carried " + devices.Transmitted);
                    return false;
                }
                if (outcome.Kind != expected)
                {
                    Console.Error.WriteLine(label + ": expected " + expected + ", the outcome is " + outcome.KindName);
                    return false;
                }
                // A registration names its id, and every flow the service accepted was attested.
                bool accepted = expected == OutcomeKind.Registered || expected == OutcomeKind.Eligible;
                if (expected == OutcomeKind.Registered && string.IsNullOrEmpty(id))
                {
                    Console.Error.WriteLine(label + ": no registration id");
                    return false;
                }
                if (accepted && devices.Attested != 1)
                {
                    Console.Error.WriteLine(label + ": " + devices.Attested + " attestations, expected 1");
                    return false;
                }
                return true;
            }
        }
    }
}
